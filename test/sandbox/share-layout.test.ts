import { describe, expect, test } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Bundle } from "../../lib/oci/index.ts";
import { placeMounts } from "../../lib/sandbox/share-layout.ts";

// A restore binds each source at the share slot its destination had when
// checkpointed, whatever order the bundle it is given lists mounts in.
describe("placeMounts", () => {
  const dir = mkdtempSync(join(tmpdir(), "husk-slots-"));
  const file = (name: string) => {
    writeFileSync(join(dir, name), name);
    return join(dir, name);
  };
  const bind = (destination: string, source: string) => ({ destination, type: "bind", source, options: ["bind"] });
  const bundle = (mounts: object[]) => ({ dir, rootfs: dir, spec: { ociVersion: "1.2.0", mounts } }) as unknown as Bundle;
  const saved = [{ slot: 3, destination: "/etc/hosts" }, { slot: 5, destination: "/data" }, { slot: 6, destination: "/data" }];

  test("by destination, the k-th bind of a destination where the k-th was; a mount that is no bind takes no slot", () => {
    const b = bundle([bind("/data", file("d1")), { destination: "/proc", type: "proc", source: "proc" }, bind("/data", file("d2")), bind("/etc/hosts", file("h"))]);
    expect([...placeMounts("c1", b, saved)]).toEqual([[0, 5], [2, 6], [3, 3]]);
  });

  test("a bind the guest never mounted is left out", () => {
    const b = bundle([bind("/etc/hosts", file("h")), bind("/data", file("d1")), bind("/data", file("d2")), bind("/new", file("n"))]);
    expect([...placeMounts("c1", b, saved)]).toEqual([[0, 3], [1, 5], [2, 6]]);
  });

  test("a destination the guest mounted that the bundle no longer binds is refused by name", () => {
    const b = bundle([bind("/data", file("d1")), bind("/etc/hosts", file("h"))]);
    expect(() => placeMounts("c1", b, saved)).toThrow(/^restore: container c1's bundle no longer binds \/data, which its checkpointed guest has mounted$/);
  });
});
