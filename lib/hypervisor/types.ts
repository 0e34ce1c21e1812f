import type { Duplex } from "node:stream";
import * as v from "valibot";

// The shape every driver (local, qemu, clh) shares. Everything above the VMM
// (agent protocol, rootfs, persist) is driver-independent and talks to the
// agent through the byte stream that dialAgent returns.

export const DRIVERS = ["local", "qemu", "clh"] as const;
export type DriverName = (typeof DRIVERS)[number];

// How the runtime reaches the agent. All but `unix` carry one byte stream, so
// calls are multiplexed over it (HTTP/2).
export const AgentChannelSchema = v.object({
  kind: v.picklist(["unix", "virtio-serial", "hybrid-vsock", "vsock"]),
  path: v.string(), // unix socket on the host (agent socket, QEMU chardev, CH vsock socket)
  port: v.optional(v.number()), // vsock port for hybrid-vsock / vsock
});
export type AgentChannel = v.InferOutput<typeof AgentChannelSchema>;

export interface GuestAssets {
  version: string; // asset version directory name, recorded so a sandbox keeps booting the same one
  dir: string;
  kernel: string;
  initrd: string;
  cmdline: string;
}

export interface VmSpec {
  sandboxId: string;
  vmDir: string; // private per-sandbox directory for sockets, logs and snapshots
  sharedDir: string; // served to the guest over virtio-fs (tag "husk")
  cpus: number;
  memoryMiB: number;
  assets?: GuestAssets; // absent for the local driver
}

// What a driver needs to find its VM again after the runtime process exits;
// stored in the persist document's hypervisor section.
export interface VmState {
  driver: DriverName;
  vmDir: string;
  pid?: number; // VMM (or, for local, the agent) process
  pidStartTime?: number; // tells a recycled pid from ours (lib/core processStartTime)
  virtiofsdPid?: number;
  apiSocket?: string; // QMP or cloud-hypervisor API socket
  agent: AgentChannel;
  assetsVersion?: string;
  extra?: Record<string, unknown>; // driver-specific (e.g. VMM version, vsock cid)
}

export type VmStatus = "running" | "paused" | "stopped";

export interface Hypervisor {
  readonly name: DriverName;
  start(spec: VmSpec): Promise<VmState>;
  dialAgent(state: VmState, timeoutMs?: number): Promise<Duplex>;
  pause(state: VmState): Promise<void>;
  resume(state: VmState): Promise<void>;
  status(state: VmState): Promise<VmStatus>;
  // Idempotent: a VM or process that is already gone is not an error.
  stop(state: VmState): Promise<void>;
}
