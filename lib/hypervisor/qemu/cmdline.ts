import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AGENT_PORT_NAME, GUEST_SHARE_TAG } from "../../guest/index.ts";
import type { GuestAssets } from "../types.ts";
import { GUEST_RAM_PATH } from "./ram.ts";

export type Accel = "kvm" | "tcg";

// Everything the VM's files are called inside its vmDir.
export const vmFiles = (vmDir: string) => ({
  qmp: join(vmDir, "qmp.sock"),
  agent: join(vmDir, "agent.sock"),
  vfs: join(vmDir, "vfs.sock"),
  console: join(vmDir, "console.log"),
  qemuLog: join(vmDir, "qemu.log"),
  virtiofsdLog: join(vmDir, "virtiofsd.log"),
});

// The guest kernel calibrates its TSC against a timer that TCG emulates
// slowly enough to hang early boot; telling it the host's rate avoids that.
export function hostTscKhz(): number | undefined {
  try {
    const m = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
    return m ? Math.round(Number(m[1]) * 1000) : undefined;
  } catch {
    return undefined;
  }
}

export function kernelCmdline(assets: GuestAssets, extra?: string): string {
  const khz = hostTscKhz();
  return ["console=ttyS0", khz ? `tsc_early_khz=${khz}` : "", assets.cmdline, extra ?? ""].filter(Boolean).join(" ");
}

// `-cpu host` aborts on PVM hosts; without arch-capabilities it starts.
// TCG's translation cache defaults to 1 GiB per VM and fills up: measured
// ~490 MiB of QEMU RSS per idle sandbox; 128 MiB keeps boot speed.
export const TCG_TB_SIZE_MIB = 128;

export const accelArgs = (accel: Accel): string[] =>
  accel === "kvm"
    ? ["-accel", "kvm", "-cpu", "host,-arch-capabilities"]
    : ["-accel", `tcg,tb-size=${TCG_TB_SIZE_MIB}`, "-cpu", "max"];

// Shared guest RAM is the memory file QEMU inherits as fd 3 (lib/hypervisor/qemu/ram.ts).
export function baseArgs(accel: Accel, cpus: number, memoryMiB: number, shareMemory: boolean): string[] {
  return [
    ...accelArgs(accel),
    "-smp", String(cpus),
    "-m", `${memoryMiB}M`,
    "-nographic", "-nodefaults", "-no-user-config", "-no-reboot",
    // PCIe for the agent's port (AGENT_PORT_DEVICE). vhost-user-fs needs
    // guest memory the virtiofsd process can map.
    "-M", `microvm,pcie=on${shareMemory ? ",memory-backend=mem" : ""}`,
    ...(shareMemory ? ["-object", `memory-backend-file,id=mem,size=${memoryMiB}M,share=on,mem-path=${GUEST_RAM_PATH}`] : []),
  ];
}

export interface QemuArgsInput {
  accel: Accel;
  cpus: number;
  memoryMiB: number;
  assets: GuestAssets;
  vmDir: string;
  name: string;
  share: boolean;
  extraCmdline?: string;
  nics?: { tap: string; mac: string }[];
  incoming?: boolean; // waits for a snapshot's state (QMP migrate-incoming)
}

// One virtio-net device per tap (opened by name: QEMU runs in the tap's netns).
const nicArgs = (nics: { tap: string; mac: string }[] = []): string[] =>
  nics.flatMap((n, i) => [
    "-netdev", `tap,id=net${i},ifname=${n.tap},script=no,downscript=no`,
    "-device", `virtio-net-pci,netdev=net${i},mac=${n.mac}`,
  ]);

// On virtio-mmio QEMU offers every queue at 1024 entries, and the guest's
// virtio-console fills each receive queue with a 4 KiB buffer per entry: 8 MiB
// of guest kernel memory for one port (measured with slub_debug). Over PCI
// the device's own sizes apply (128 and 32): 66 -> 55 MiB in use. Two ports:
// the reserved console port 0 and ours.
const AGENT_PORT_DEVICE = "virtio-serial-pci,max_ports=2";

export function qemuArgs(i: QemuArgsInput): string[] {
  const f = vmFiles(i.vmDir);
  return [
    "-name", i.name,
    ...baseArgs(i.accel, i.cpus, i.memoryMiB, i.share),
    "-kernel", i.assets.kernel,
    "-initrd", i.assets.initrd,
    "-append", kernelCmdline(i.assets, i.extraCmdline),
    "-serial", `file:${f.console}`,
    "-qmp", `unix:${f.qmp},server=on,wait=off`,
    "-device", AGENT_PORT_DEVICE,
    "-chardev", `socket,path=${f.agent},server=on,wait=off,id=${AGENT_CHARDEV}`,
    "-device", `virtserialport,chardev=${AGENT_CHARDEV},name=${AGENT_PORT_NAME}`,
    ...(i.share
      ? ["-chardev", `socket,id=fs0,path=${f.vfs}`, "-device", `vhost-user-fs-device,chardev=fs0,tag=${GUEST_SHARE_TAG}`]
      : []),
    ...nicArgs(i.nics),
    ...(i.incoming ? ["-incoming", "defer"] : []),
  ];
}

export const AGENT_CHARDEV = "agent0";
