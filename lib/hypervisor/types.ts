import type { Duplex } from "node:stream";
import type * as v from "valibot";
import type { GuestAssets } from "../guest/index.ts";
import type { ProcessRef, SnapshotRecord, VmRecord } from "../persist/index.ts";

// The shape every driver (local, qemu, clh) shares, as kata's runtime-rs gives
// every hypervisor one trait. Everything above the VMM (agent protocol,
// rootfs, persist) is driver-independent: lib/sandbox reads a driver's
// features and calls these methods, and never names a driver.

export const DRIVERS = ["local", "qemu", "clh"] as const;
export type DriverName = (typeof DRIVERS)[number];

export type { GuestAssets };

// How the runtime reaches the agent. All but `unix` carry one byte stream,
// which only one host process can hold: the sandbox's proxy.
export interface AgentChannel {
  kind: "unix" | "virtio-serial" | "hybrid-vsock" | "vsock";
  path: string; // unix socket on the host (agent socket, QEMU chardev, CH vsock socket)
  port?: number; // vsock port for hybrid-vsock / vsock
}

// What a driver can do, known without loading its code.
export interface DriverFeatures {
  isolation: "vm" | "none"; // none: containers are runc containers on the host
  sharedFs: boolean; // rootfs and bind sources reach the guest through a shared directory
  pause: boolean; // the whole VM can be paused
  checkpoint: boolean; // checkpoint and restore of the sandbox
  hotplug: boolean; // devices added to a running VM
  networkDevices: boolean; // virtio-net devices
  resize: boolean; // vCPUs and memory changed while running
}

export interface VmSpec {
  sandboxId: string;
  vmDir: string; // private per-sandbox directory for sockets, logs and snapshots
  sharedDir: string; // served to the guest over virtio-fs
  cpus: number;
  memoryMiB: number;
  assets?: GuestAssets; // absent: the driver picks the configured (or newest) ones
  network?: VmNetwork; // interfaces to give the VM (drivers with networkDevices)
}

// Tap devices waiting in a network namespace, one virtio-net device each.
export interface VmNetwork {
  netns: string; // the VMM runs in it, to open the taps by name
  nics: { tap: string; mac: string; mtu: number }[];
}

export type VmStatus = "running" | "paused" | "stopped";

export interface CheckpointOptions {
  leaveRunning?: boolean; // resume the VM after the snapshot (default: it stays paused)
  // Read back only by this husk build (a VM template, a cache keyed by the
  // build): the VMM may use a faster format older releases cannot load.
  sameBuildOnly?: boolean;
}

export type SnapshotSupport = { vmm: string } | { refused: string };

// R: the driver's own record in the persist document (its frozen schema).
export interface Hypervisor<R extends VmRecord = VmRecord> {
  readonly name: DriverName;
  readonly features: DriverFeatures;
  readonly schema: v.GenericSchema<unknown, R>;
  // Everything started is recorded in R; a failure stops what it started.
  start(spec: VmSpec): Promise<R>;
  channel(vm: R): AgentChannel;
  dialAgent(vm: R, timeoutMs?: number): Promise<Duplex>;
  // The VM's main process: the VMM (for local, the agent). Whether it still
  // runs is `running(mainProcess(vm))`, which reads /proc only.
  mainProcess(vm: R): ProcessRef | undefined;
  // The host processes the guest's containers cannot outlive (VMM,
  // virtiofsd): one gone, they are gone. Empty where containers run on the
  // host (local: runc's containers outlive its agent).
  vitals(vm: R): ProcessRef[];
  status(vm: R): Promise<VmStatus>;
  pause(vm: R): Promise<void>;
  resume(vm: R): Promise<void>;
  // Idempotent: a VM or process that is already gone is not an error.
  stop(vm: R): Promise<void>;
  checkpoint?(vm: R, dest: string, opts?: CheckpointOptions): Promise<SnapshotRecord>;
  // Whether this host's VMM can take a checkpoint, and what identifies it
  // (a VM template is bound to the VMM that saved it).
  snapshotSupport?(cacheDir?: string): SnapshotSupport; // cacheDir: where a slow answer may be kept
  // Into a new VM directory; the shared directory is already rebuilt.
  restore?(snapshot: SnapshotRecord, spec: VmSpec): Promise<R>;
}
