import { afterAll, describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { mountsOf } from "../helpers/mountinfo.ts";
import { vmEnv, vmSkipReason } from "../qemu/assets.ts";

// Bind mounts of host directories with the options runc takes (propagation,
// ro, nosuid/nodev/noexec, recursive): present in the container with those
// flags, for runc (local) and in a VM (served over virtio-fs).

const work = mkdtempSync(join(tmpdir(), "husk-mounts-"));
afterAll(() => {
  for (const d of ["local", "qemu"]) for (const m of ["src/sub", "src"]) spawnSync("umount", ["-l", join(work, m.replace("src", `src-${d}`))]);
  rmSync(work, { recursive: true, force: true });
});

const MOUNTS = [
  { destination: "/d-rshared", options: ["rbind", "rshared"] },
  { destination: "/d-ro", options: ["rbind", "rslave", "ro"] },
  { destination: "/d-flags", options: ["bind", "private", "nosuid", "nodev", "noexec"] },
  { destination: "/d-rw", options: ["rbind"] },
];

describe.each(["local", "qemu"] as const)("bind mounts with the %s driver", (driver) => {
  const skip = driver === "qemu" ? vmSkipReason() : undefined;

  test.skipIf(!!skip)("each bind is there with its options and propagation; writes through rw reach the host, ro refuses them", async () => {
    let cli = new Cli();
    if (driver === "qemu") {
      cli = new Cli(vmEnv());
    }
    const src = join(work, `src-${driver}`);
    mkdirSync(src);
    writeFileSync(join(src, "f"), "from-host\n");
    // A mount under the source: an rbind carries it, a plain bind does not.
    // The source is a shared mount, as / is under systemd: tearing the
    // container down must not unmount the user's submount through propagation.
    const sub = join(src, "sub");
    mkdirSync(sub);
    for (const args of [["--bind", src, src], ["--make-shared", src], ["-t", "tmpfs", "husk-test-sub", sub]]) expect(spawnSync("mount", args).status).toBe(0);
    writeFileSync(join(sub, "s"), "submount\n");
    const b = makeBusyboxBundle(join(work, `b-${driver}`), { args: ["sleep", "300"] });
    const spec = JSON.parse(readFileSync(join(b, "config.json"), "utf8"));
    spec.mounts.push(...MOUNTS.map((m) => ({ ...m, type: "bind", source: src })));
    writeFileSync(join(b, "config.json"), JSON.stringify(spec));
    const id = `mnt-${driver}`;
    try {
      cli.ok(["create", "--bundle", b, id], { stdioFile: cli.out });
      cli.ok(["start", id]);
      const mounts = mountsOf(cli.ok(["exec", id, "cat", "/proc/self/mountinfo"]));
      for (const m of MOUNTS) {
        expect(mounts.has(m.destination), m.destination).toBe(true);
        expect(cli.ok(["exec", id, "cat", `${m.destination}/f`]), m.destination).toBe("from-host\n");
      }
      expect(mounts.get("/d-rshared")!.tags.some((t) => t.startsWith("shared:"))).toBe(true);
      expect(mounts.get("/d-ro")!.options).toContain("ro");
      expect(mounts.get("/d-flags")!.options).toEqual(expect.arrayContaining(["nosuid", "nodev", "noexec"]));
      expect(mounts.get("/d-flags")!.tags.filter((t) => t.startsWith("shared:") || t.startsWith("master:"))).toEqual([]);
      expect(cli.ok(["exec", id, "cat", "/d-rw/sub/s"])).toBe("submount\n");
      expect(cli.ok(["exec", id, "ls", "/d-flags/sub"])).toBe("");
      cli.ok(["exec", id, "sh", "-c", "echo from-container > /d-rw/g"]);
      expect(readFileSync(join(src, "g"), "utf8")).toBe("from-container\n");
      expect(cli.run(["exec", id, "sh", "-c", "echo x > /d-ro/h"]).status).not.toBe(0);
    } finally {
      cli.run(["delete", "--force", id]);
    }
    await until(() => processesUsing(cli.root).length === 0, 20_000, "nothing left running");
    expect(readFileSync(join(src, "f"), "utf8")).toBe("from-host\n"); // the source survives the delete
    expect(readFileSync(join(sub, "s"), "utf8")).toBe("submount\n"); // and its submount is still mounted
    expect(cli.leftovers().filter((n) => n !== "qemu")).toEqual([]);
  }, 300_000);
});
