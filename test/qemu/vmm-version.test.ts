import { afterAll, expect, test } from "vitest";
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { spawnSync } from "node:child_process";

// Each `husk create` is a new process that needs QEMU's version for the
// template key: it asks `qemu -version` once per binary and change, then
// reads the answer kept beside the templates. A stand-in QEMU counts how
// often it is asked.

const work = mkdtempSync(join(tmpdir(), "husk-vmm-version-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const fake = join(work, "qemu-system-x86_64");
const asked = join(work, "asked");
const cache = join(work, "templates");
const probe = join(work, "probe.ts");
const snapshotTs = resolve(import.meta.dirname, "../../lib/hypervisor/qemu/snapshot.ts");

function fakeQemu(version: string): void {
  writeFileSync(fake, `#!/bin/sh\necho x >> ${asked}\necho "QEMU emulator version ${version} (Debian)"\n`);
  chmodSync(fake, 0o755);
}

// What a new process makes of the stand-in.
function support(): string {
  writeFileSync(probe, `import { snapshotSupport } from ${JSON.stringify(snapshotTs)};\nconsole.log(JSON.stringify(snapshotSupport(${JSON.stringify(fake)}, ${JSON.stringify(cache)})));\n`);
  const r = spawnSync(process.execPath, [probe], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim();
}

const timesAsked = () => readFileSync(asked, "utf8").split("\n").filter(Boolean).length;

test("QEMU's version is asked once per binary, kept for later processes, and asked again when the binary changes or the kept answer is damaged", () => {
  fakeQemu("10.0.2");
  const first = support();
  expect(first).toContain("qemu 10.0.2 ");
  expect(support()).toBe(first);
  expect(timesAsked()).toBe(1);

  fakeQemu("10.1.12"); // another size: another binary
  expect(support()).toContain("qemu 10.1.12 ");
  expect(timesAsked()).toBe(2);

  const kept = readdirSync(cache).filter((n) => n.startsWith("vmm-version-"));
  expect(kept).toHaveLength(2);
  for (const n of kept) writeFileSync(join(cache, n), "garbage");
  expect(support()).toContain("qemu 10.1.12 ");
  expect(timesAsked()).toBe(3);
  expect(readdirSync(cache).filter((n) => !n.startsWith("vmm-version-"))).toEqual([]); // nothing half-written left
});

test("a QEMU too old to migrate virtio-fs is refused by version, and no answer is kept for a binary that gives none", () => {
  fakeQemu("7.2.0");
  expect(JSON.parse(support())).toEqual({ refused: expect.stringContaining("7.2") });
  writeFileSync(fake, "#!/bin/sh\nexit 1\n");
  chmodSync(fake, 0o755);
  expect(JSON.parse(support())).toHaveProperty("refused");
  const before = readdirSync(cache).length;
  support();
  expect(readdirSync(cache)).toHaveLength(before);
});
