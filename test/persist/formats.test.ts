import { describe, expect, test } from "vitest";
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { FormatChain, FORMATS, openStore, PersistError, type FormatStep } from "../../lib/persist/index.ts";
import { ContainerV1, SandboxV1 } from "../../lib/persist/v1.ts";
import { tempRoot } from "./helpers.ts";

const FIXTURES = join(import.meta.dirname, "..", "fixtures", "persist", "1.0");

// Two future formats, registered here only: 1.1 adds a required counter to
// every container; 2.0 renames the sandbox's `state` to `phase`.
const V1_1 = v.looseObject({
  ...SandboxV1.entries,
  formatVersion: v.literal("1.1"),
  containers: v.array(v.looseObject({ ...ContainerV1.entries, restarts: v.number() })),
});
const { state: _state, ...v2Entries } = V1_1.entries;
const V2_0 = v.looseObject({ ...v2Entries, formatVersion: v.literal("2.0"), phase: v.string() });

type Doc = Record<string, unknown> & { id: string; containers: { id: string }[] };
const up1_1: FormatStep["up"] = (d) => ({
  ...d,
  containers: (d.containers as Record<string, unknown>[]).map((c) => ({ restarts: 0, ...c })),
});
const up2_0: FormatStep["up"] = ({ state, ...rest }) => ({ ...rest, phase: state });
const NEXT = new FormatChain<Doc>([
  { version: "1.0", schema: SandboxV1 },
  { version: "1.1", schema: V1_1, up: up1_1 },
  { version: "2.0", schema: V2_0, up: up2_0 },
]);

function caught(fn: () => unknown): PersistError {
  try {
    fn();
  } catch (e) {
    return e as PersistError;
  }
  throw new Error("expected an error");
}

function placeFixture(root: string, name: string): { id: string; path: string } {
  const id = JSON.parse(readFileSync(join(FIXTURES, name), "utf8")).id;
  mkdirSync(join(root, id));
  const path = join(root, id, "persist.json");
  copyFileSync(join(FIXTURES, name), path);
  return { id, path };
}

describe("migration chain", () => {
  test("a 1.0 document migrates through 1.1 to 2.0 on load and saves as 2.0", () => {
    const root = tempRoot("mig");
    const { id, path } = placeFixture(root, "several-containers.json");
    const original = JSON.parse(readFileSync(path, "utf8"));
    const next = openStore({ root, formats: NEXT });
    expect(next.formats.current).toBe("2.0");
    const doc = next.load(id);
    expect(doc.formatVersion).toBe("2.0");
    expect(doc.phase).toBe(original.state);
    expect(doc.state).toBeUndefined();
    expect(doc.containers.map((c) => (c as { restarts?: number }).restarts)).toEqual(original.containers.map(() => 0));
    // Loading alone wrote nothing: still the 1.0 bytes.
    expect(JSON.parse(readFileSync(path, "utf8"))).toEqual(original);
    next.save(doc);
    expect(JSON.parse(readFileSync(path, "utf8")).formatVersion).toBe("2.0");
    expect(next.load(id)).toEqual({ ...doc, writtenBy: expect.anything() });
  });

  test("this build refuses the 2.0 file it cannot read, names it and changes nothing", () => {
    const root = tempRoot("mig-refuse");
    const { id, path } = placeFixture(root, "one-container.json");
    const next = openStore({ root, formats: NEXT });
    next.save(next.load(id));
    const before = readFileSync(path);
    const mtime = statSync(path).mtimeMs;
    const current = openStore({ root });
    const err = caught(() => current.load(id));
    expect(err).toBeInstanceOf(PersistError);
    expect(err.reason).toBe("newer-format");
    expect(err.message).toContain(path);
    expect(err.message).toContain(`sandbox ${id}`);
    expect(err.message).toContain("format 2.0");
    expect(err.message).toContain(">=1.0 <2.0");
    expect(err.message).toMatch(/upgrade husk/i);
    expect(readFileSync(path)).toEqual(before);
    expect(statSync(path).mtimeMs).toBe(mtime);
  });

  test("update() of a newer-major document fails and writes nothing", async () => {
    const root = tempRoot("mig-update");
    const { id, path } = placeFixture(root, "minimal.json");
    const next = openStore({ root, formats: NEXT });
    next.save(next.load(id));
    const before = readFileSync(path, "utf8");
    const err = await openStore({ root })
      .update(id, (d) => void (d.state = "stopped"))
      .catch((e) => e);
    expect(err.reason).toBe("newer-format");
    expect(readFileSync(path, "utf8")).toBe(before);
  });

  test("a build that no longer reads 1.x says so", () => {
    const root = tempRoot("mig-old");
    const { id } = placeFixture(root, "minimal.json");
    const only2 = new FormatChain<Doc>([{ version: "2.0", schema: V2_0 }]);
    expect(() => openStore({ root, formats: only2 }).load(id)).toThrow(/format 1\.0, which this husk no longer reads \(>=2\.0 <3\.0\)/);
  });

  test("a step that produces an invalid document is reported against the file", () => {
    const broken = new FormatChain<Doc>([
      { version: "1.0", schema: SandboxV1 },
      { version: "1.1", schema: V1_1, up: (d) => d }, // forgets the new field
    ]);
    const root = tempRoot("mig-bad");
    const { id, path } = placeFixture(root, "one-container.json");
    expect(() => openStore({ root, formats: broken }).load(id)).toThrow(
      new RegExp(`${path.replace(/[.]/g, "\\.")} \\(sandbox ${id}\\): does not match format 1\\.0 \\(read as format 1\\.1\\): containers\\.0\\.restarts`),
    );
  });

  test("chains must be ordered and every step after the first must migrate", () => {
    expect(() => new FormatChain([{ version: "1.1", schema: V1_1 }, { version: "1.0", schema: SandboxV1, up: up1_1 }])).toThrow(/order/);
    expect(() => new FormatChain([{ version: "1.0", schema: SandboxV1 }, { version: "1.1", schema: V1_1 }])).toThrow(/no migration/);
  });
});

describe("this release's formats", () => {
  test("writes 1.2 and reads every 1.x", () => {
    expect(FORMATS.current).toBe("1.2");
    expect(FORMATS.readRange).toBe(">=1.0 <2.0");
  });

  test("a newer minor is read, its unknown fields kept at every level and written back", () => {
    const root = tempRoot("minor");
    const store = openStore({ root });
    const { id, path } = placeFixture(root, "all-sections.json");
    const future = JSON.parse(readFileSync(path, "utf8"));
    future.formatVersion = "1.7";
    future.topLevelNew = { nested: [1, 2] };
    future.config.balloon = true;
    future.hypervisor.agent.cid = 42;
    future.hypervisor.vmm.seccomp = "strict";
    future.agent.features = ["x"];
    future.virtiofsd.threads = 4;
    future.network.interfaces[0].mtu = 1500;
    future.devices[1].pci = "0000:00:05.0";
    future.containers[0].process.newOciField = { a: 1 };
    future.containers[0].mounts[0].idmap = true;
    future.containers[1].checkpoint = { dir: "/x" };
    writeFileSync(path, JSON.stringify(future));
    const doc = store.load(id);
    doc.state = "running";
    store.save(doc);
    const written = JSON.parse(readFileSync(path, "utf8"));
    // Saved in the format this release writes; everything else as it was.
    expect(written).toEqual({ ...future, formatVersion: FORMATS.current, state: "running", writtenBy: expect.anything() });
  });
});
