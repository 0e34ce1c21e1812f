import * as v from "valibot";
import { HuskError, describeIssues } from "../../core/index.ts";

// The part of cloud-hypervisor's VmConfig that husk sends (schema names as in
// the OpenAPI spec). Sections a VM does not use are left out of the JSON, so
// adding a feature never changes the config of a VM that does not use it.

const ConsoleSchema = v.object({
  mode: v.picklist(["Off", "Pty", "Tty", "File", "Socket", "Null"]),
  file: v.optional(v.string()),
});

export const VmConfigSchema = v.object({
  payload: v.object({ kernel: v.string(), initramfs: v.optional(v.string()), cmdline: v.string() }),
  cpus: v.object({ boot_vcpus: v.number(), max_vcpus: v.number() }),
  memory: v.object({ size: v.number(), shared: v.optional(v.boolean()) }),
  fs: v.optional(
    v.array(
      v.object({
        tag: v.string(),
        socket: v.string(),
        num_queues: v.number(),
        queue_size: v.number(),
        pci_segment: v.number(),
      }),
    ),
  ),
  platform: v.optional(v.object({ num_pci_segments: v.number() })),
  vsock: v.optional(v.object({ cid: v.number(), socket: v.string() })),
  serial: ConsoleSchema,
  console: ConsoleSchema,
});
export type VmConfig = v.InferOutput<typeof VmConfigSchema>;

const positiveInt = (what: string) =>
  v.pipe(v.number(), v.integer(`${what} must be a whole number`), v.minValue(1, `${what} must be at least 1`));

export const VmConfigInputSchema = v.object({
  kernel: v.pipe(v.string(), v.nonEmpty("kernel path is empty")),
  initramfs: v.optional(v.string()),
  cmdline: v.string(),
  cpus: positiveInt("cpus"),
  memoryMiB: positiveInt("memoryMiB"),
  fs: v.optional(v.array(v.object({ tag: v.pipe(v.string(), v.nonEmpty()), socket: v.string() }))),
  vsock: v.optional(v.object({ cid: v.pipe(positiveInt("vsock cid"), v.minValue(3, "vsock cid must be at least 3")), socket: v.string() })),
  serialFile: v.optional(v.string()),
});
export type VmConfigInput = v.InferOutput<typeof VmConfigInputSchema>;

// Devices that need their own PCI segment (virtio-fs) sit on segment 1, so
// hot-plugged devices on segment 0 never move them.
const FS_PCI_SEGMENT = 1;
const FS_QUEUE_SIZE = 1024;

// Key order is fixed here, so equal inputs serialise to byte-identical JSON.
export function buildVmConfig(input: VmConfigInput): VmConfig {
  const parsed = v.safeParse(VmConfigInputSchema, input);
  if (!parsed.success) throw new HuskError(`cloud-hypervisor VM config: ${describeIssues(parsed.issues)}`);
  const i = parsed.output;
  const fs = i.fs?.length
    ? i.fs.map((f) => ({ tag: f.tag, socket: f.socket, num_queues: 1, queue_size: FS_QUEUE_SIZE, pci_segment: FS_PCI_SEGMENT }))
    : undefined;
  const config: VmConfig = {
    payload: { kernel: i.kernel, ...(i.initramfs ? { initramfs: i.initramfs } : {}), cmdline: i.cmdline },
    cpus: { boot_vcpus: i.cpus, max_vcpus: i.cpus },
    // virtio-fs (vhost-user) maps guest memory into virtiofsd: it must be shared.
    memory: { size: i.memoryMiB * 1024 * 1024, ...(fs ? { shared: true } : {}) },
    ...(fs ? { fs, platform: { num_pci_segments: FS_PCI_SEGMENT + 1 } } : {}),
    ...(i.vsock ? { vsock: { cid: i.vsock.cid, socket: i.vsock.socket } } : {}),
    serial: i.serialFile ? { mode: "File", file: i.serialFile } : { mode: "Null" },
    console: { mode: "Off" },
  };
  return config;
}
