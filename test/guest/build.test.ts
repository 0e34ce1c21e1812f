import { describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { husk } from "../helpers/husk.ts";
import { TEST_GUEST_DIR, buildAssets, vmSkipReason } from "../qemu/assets.ts";

const skip = vmSkipReason();
if (skip) console.log(`test/guest build: skipped: ${skip}`);

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe.skipIf(!!skip)("husk guest build", () => {
  test("produces versioned assets whose manifest matches the files; a second run reuses the .deb cache", () => {
    const first = buildAssets(["--json"]);
    expect(first.stderr).toBe("");
    expect(first.status).toBe(0);
    const a = JSON.parse(first.stdout);
    const m = a.manifest;
    expect(a.dir).toBe(join(TEST_GUEST_DIR, m.version));
    expect(m.kernelRelease).toMatch(/^\d+\.\d+\.\d+-\d+-cloud-amd64$/);
    expect(m.version.startsWith(m.kernelRelease)).toBe(true);
    expect(m.agent).toBe("share");
    for (const f of [m.files.kernel, m.files.initrd, m.files.agent, m.files.virtiofsd]) {
      expect(sha256(join(a.dir, f.path))).toBe(f.sha256);
    }
    expect(readFileSync(join(a.dir, m.files.kernel.path)).subarray(0, 4).toString("latin1")).toBe("\x7fELF");
    const listing = spawnSync("busybox", ["cpio", "-t"], { input: readFileSync(join(a.dir, m.files.initrd.path)), encoding: "utf8", maxBuffer: 1 << 24 });
    const names = listing.stdout.split("\n");
    for (const want of ["init", "bin/busybox", "usr/bin/crun", "lib/x86_64-linux-gnu/libseccomp.so.2", "lib/x86_64-linux-gnu/libsystemd.so.0", `lib/modules/${m.kernelRelease}/kernel/fs/fuse/virtiofs.ko`])
      expect(names).toContain(want);
    expect(m.modules).toEqual(expect.arrayContaining(["virtio_mmio", "virtio_console", "virtiofs", "fuse", "overlay", "vmw_vsock_virtio_transport"]));

    const second = JSON.parse(buildAssets(["--json"]).stdout);
    expect(second.reused).toBe(true);
    expect(second.downloaded).toEqual([]);
    expect(second.manifest.version).toBe(m.version);
    const debs = readdirSync(join(TEST_GUEST_DIR, ".cache", "debs"));
    expect(debs.some((d) => d.startsWith("linux-image-") && d.endsWith(".deb"))).toBe(true);
    expect(debs.some((d) => d.startsWith("virtiofsd_"))).toBe(true);
  }, 600_000);

  test("bad options are refused by name and leave no version behind", () => {
    const before = readdirSync(TEST_GUEST_DIR).sort();
    const r1 = husk(["guest", "build", "--dest", TEST_GUEST_DIR, "--agent-in", "disk"]);
    expect(r1.status).toBe(1);
    expect(r1.stderr).toBe('husk: --agent-in must be share or initrd, not "disk"\n');
    const r2 = husk(["guest", "build", "--dest", TEST_GUEST_DIR, "--agent", "/no/such/husk"]);
    expect(r2.status).toBe(1);
    expect(r2.stderr).toBe("husk: agent binary /no/such/husk does not exist\n");
    expect(readdirSync(TEST_GUEST_DIR).sort()).toEqual(before);
  });

  test("husk guest list shows the built versions, newest first", () => {
    const r = husk(["guest", "list", "--json"], { env: { HUSK_GUEST_DIR: TEST_GUEST_DIR } });
    expect(r.status).toBe(0);
    const versions = JSON.parse(r.stdout);
    expect(versions.length).toBeGreaterThan(0);
    const times = versions.map((v: { builtAt: string }) => v.builtAt);
    expect([...times].sort().reverse()).toEqual(times);
  });
});
