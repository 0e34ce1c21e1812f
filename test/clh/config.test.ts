import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { HuskError } from "../../lib/core/index.ts";
import { buildVmConfig, rewriteSnapshotConfig, vmConfigFor, vmPaths, type VmConfigInput } from "../../lib/hypervisor/clh/index.ts";
import { loadChSpec } from "./spec.ts";

const spec = loadChSpec();
const fixture = (name: string) => readFileSync(join(import.meta.dirname, "fixtures", name), "utf8");
const pretty = (x: unknown) => JSON.stringify(x, null, 2) + "\n";

const base: VmConfigInput = {
  kernel: "/var/lib/husk/guest/1/vmlinux",
  initramfs: "/var/lib/husk/guest/1/initrd.cpio.gz",
  cmdline: "console=ttyS0 quiet",
  cpus: 2,
  memoryMiB: 512,
  vsock: { cid: 3, socket: "/run/husk/vm/s1/vsock.sock" },
  serialFile: "/run/husk/vm/s1/serial.log",
};
const withFs: VmConfigInput = { ...base, fs: [{ tag: "husk", socket: "/run/husk/vm/s1/virtiofs.sock" }] };

describe("VmConfig builder", () => {
  test("a VM without virtio-fs serialises exactly as before fs and platform existed", () => {
    const json = pretty(buildVmConfig(base));
    expect(json).toBe(fixture("vmconfig-basic.json"));
    expect(json).not.toMatch(/"fs"|"platform"|"shared"/);
  });

  test("virtio-fs brings shared memory, the device on PCI segment 1 and two segments", () => {
    const config = buildVmConfig(withFs);
    expect(pretty(config)).toBe(fixture("vmconfig-virtiofs.json"));
    expect(config.memory.shared).toBe(true);
    expect(config.fs?.[0]).toMatchObject({ tag: "husk", pci_segment: 1 });
    expect(config.platform?.num_pci_segments).toBeGreaterThan(config.fs![0]!.pci_segment);
  });

  test.each([
    ["without virtio-fs", base],
    ["with virtio-fs", withFs],
    ["minimal", { kernel: "/k", cmdline: "", cpus: 1, memoryMiB: 64 }],
  ])("the config %s validates against the spec's VmConfig", (_name, input) => {
    expect(spec.check("VmConfig", buildVmConfig(input))).toEqual([]);
  });

  test("the config the driver builds for a sandbox validates against the spec", () => {
    const p = vmPaths("/run/husk/vm/sb1");
    const config = vmConfigFor(
      {
        sandboxId: "sb1",
        vmDir: p.dir,
        sharedDir: "/run/husk/shared/sb1",
        cpus: 1,
        memoryMiB: 256,
        assets: { version: "1", dir: "/g", kernel: "/g/vmlinux", initrd: "/g/initrd", cmdline: "quiet" },
      },
      p,
    );
    expect(spec.check("VmConfig", config)).toEqual([]);
    expect(config.vsock?.socket).toBe(p.vsock);
    expect(config.fs?.[0]?.socket).toBe(p.virtiofs);
  });

  test("a sandbox without guest assets is refused by name", () => {
    const p = vmPaths("/run/husk/vm/sb2");
    expect(() => vmConfigFor({ sandboxId: "sb2", vmDir: p.dir, sharedDir: "/s", cpus: 1, memoryMiB: 64 }, p)).toThrow(
      /sandbox sb2: the clh driver needs guest assets/,
    );
  });

  test.each([
    [{ cpus: 0 }, /cpus must be at least 1/],
    [{ memoryMiB: 1.5 }, /memoryMiB must be a whole number/],
    [{ vsock: { cid: 2, socket: "/v" } }, /vsock cid must be at least 3/],
    [{ kernel: "" }, /kernel path is empty/],
  ])("bad input %j is a HuskError naming the field", (bad, message) => {
    const run = () => buildVmConfig({ ...base, ...bad } as VmConfigInput);
    expect(run).toThrow(HuskError);
    expect(run).toThrow(message);
  });
});

describe("snapshot config rewrite", () => {
  const from = "/run/husk/vm/old";
  const to = vmPaths("/run/husk/vm/new");
  // A snapshot's config.json as a VMM writes it: our config plus defaults it filled in.
  const saved = {
    ...buildVmConfig({ ...withFs, vsock: { cid: 3, socket: `${from}/vsock.sock` }, serialFile: `${from}/serial.log` }),
    fs: [{ tag: "husk", socket: `${from}/virtiofs.sock`, num_queues: 1, queue_size: 1024, pci_segment: 1, id: "_fs0" }],
    pmem: [{ file: `${from}/scratch.img`, discard_writes: false }],
    landlock_enable: false,
  };

  test("moves the sockets and files to the new VM directory and keeps everything else", () => {
    const out = rewriteSnapshotConfig(saved, from, to) as Record<string, any>;
    expect(out.vsock.socket).toBe(to.vsock);
    expect(out.fs[0].socket).toBe(to.virtiofs);
    expect(out.serial.file).toBe(to.serial);
    expect(out.pmem[0].file).toBe("/run/husk/vm/new/scratch.img");
    expect(JSON.stringify(out)).not.toContain(from);
    expect(out.payload).toEqual(saved.payload);
    expect(out.fs[0].id).toBe("_fs0");
    expect(out.landlock_enable).toBe(false);
    expect(spec.check("VmConfig", out)).toEqual([]);
  });

  test("the VMM's own sockets move even when they lay outside the old directory", () => {
    const elsewhere = { ...saved, vsock: { cid: 3, socket: "/tmp/other/vsock.sock" } };
    const out = rewriteSnapshotConfig(elsewhere, from, to) as Record<string, any>;
    expect(out.vsock.socket).toBe(to.vsock);
  });

  test("a path that only shares a prefix with the old directory is left alone", () => {
    const out = rewriteSnapshotConfig({ ...saved, payload: { kernel: `${from}-kernels/vmlinux` } }, from, to) as Record<string, any>;
    expect(out.payload.kernel).toBe(`${from}-kernels/vmlinux`);
  });

  test("a config.json that is not an object is refused", () => {
    expect(() => rewriteSnapshotConfig([1, 2], from, to)).toThrow(/config.json is not a JSON object/);
  });
});
