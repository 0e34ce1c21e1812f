// Persist format 1.1 — FROZEN: release 0.2.0 writes it. A minor of 1.0: everything here is
// additive, so a release that reads 1.0 (0.1.0) still reads, keeps and writes
// back a 1.1 document (as 1.0; the next 1.1 reader migrates it again).
//
// What 1.1 adds: typed records where 1.0 had a grab-bag (`hypervisor.extra`):
//   vm         the driver's own record (one shape per driver)
//   proxy      the sandbox's agent proxy process
//   snapshots  checkpoints taken of the sandbox
//   network    the 1.0 section, with MTU and routes
//   containers[].execs  processes whose pid `exec --pid-file` published
// The 1.0 `hypervisor` section is still written beside them (lib/persist/legacy.ts)
// for as long as a promised release reads it.
//
// Like v1.ts, nothing here imports from the rest of the tree.
import * as v from "valibot";
import { ContainerV1, SandboxV1 } from "./v1.ts";

const Pid = v.pipe(v.number(), v.integer(), v.minValue(1));
const Timestamp = v.pipe(v.string(), v.isoTimestamp());

// A process husk started and must find again: the start time (clock ticks
// since boot, /proc/<pid>/stat) tells it from an unrelated process that got a
// recycled pid.
export const ProcessRefV1_1 = v.looseObject({ pid: Pid, startTime: v.optional(v.number()) });

export const VirtiofsdV1_1 = v.looseObject({
  process: ProcessRefV1_1,
  socket: v.string(), // vhost-user socket the VMM connects to
  sharedDir: v.string(), // the directory it serves
  tag: v.string(), // the guest's mount tag
});

// local: no VM; the "VM" is the agent process on the host.
export const LocalVmV1_1 = v.looseObject({
  driver: v.literal("local"),
  dir: v.string(), // sockets, logs, the agent's state
  agent: v.optional(ProcessRefV1_1),
  socket: v.string(), // the agent's unix socket
});

export const QemuVmV1_1 = v.looseObject({
  driver: v.literal("qemu"),
  dir: v.string(),
  vmm: v.optional(ProcessRefV1_1), // absent only while it starts
  qmpSocket: v.string(),
  agentSocket: v.string(), // the virtio-serial chardev: one byte stream
  accel: v.picklist(["kvm", "tcg"]),
  accelReason: v.optional(v.string()),
  assetsVersion: v.string(), // the guest assets it booted: kept while it runs
  virtiofsd: v.optional(VirtiofsdV1_1),
  agentInShare: v.optional(v.string()), // the agent binary placed in the share
});

export const ClhVmV1_1 = v.looseObject({
  driver: v.literal("clh"),
  dir: v.string(),
  vmm: v.optional(ProcessRefV1_1),
  apiSocket: v.string(),
  vsockSocket: v.string(), // hybrid vsock: "CONNECT <port>" on this socket
  agentPort: v.number(),
  vmmVersion: v.optional(v.string()), // snapshots restore only on the same version
  assetsVersion: v.optional(v.string()),
  virtiofsd: v.optional(VirtiofsdV1_1),
});

export const VmV1_1 = v.variant("driver", [LocalVmV1_1, QemuVmV1_1, ClhVmV1_1]);

// `husk proxy`: holds a VM's single agent stream and serves it on a unix socket.
export const ProxyV1_1 = v.looseObject({ process: ProcessRefV1_1, socket: v.string() });

export const SnapshotV1_1 = v.looseObject({
  driver: v.string(),
  path: v.string(), // directory the VMM wrote
  createdAt: Timestamp,
  vmmVersion: v.optional(v.string()),
  sourceVmDir: v.string(), // per-VM paths in the snapshot lie under it
});

// Same field types as 1.0's network section (a 1.0 reader validates it), plus
// what carrying a netns into a VM needs to undo later.
export const NetworkV1_1 = v.looseObject({
  mode: v.string(), // "none", "netns", ...
  netns: v.optional(v.string()),
  interfaces: v.optional(
    v.array(
      v.looseObject({
        name: v.string(),
        mac: v.optional(v.string()),
        addresses: v.optional(v.array(v.string())), // CIDR
        tap: v.optional(v.string()),
        mtu: v.optional(v.number()),
      }),
    ),
  ),
  routes: v.optional(
    v.array(
      v.looseObject({
        destination: v.string(), // "default" or CIDR
        gateway: v.optional(v.string()),
        device: v.optional(v.string()),
        family: v.optional(v.picklist([4, 6])),
      }),
    ),
  ),
});

// A process started by `exec --pid-file`: the host process whose pid was
// published for it (its shim, or the attached `husk exec`). `ps` reports it.
export const ExecV1_1 = v.looseObject({ id: v.string(), process: ProcessRefV1_1 });

const HookV1_1 = v.looseObject({
  path: v.string(),
  args: v.optional(v.array(v.string())),
  env: v.optional(v.array(v.string())),
  timeout: v.optional(v.number()),
});

export const ContainerV1_1 = v.looseObject({
  ...ContainerV1.entries,
  execs: v.optional(v.array(ExecV1_1)),
  // The hooks husk runs itself on the host (prestart, createRuntime,
  // poststart, poststop), kept from create because the last two come later.
  hooks: v.optional(v.record(v.string(), v.array(HookV1_1))),
  // The container's init pid as its agent sees it (the guest's, in a VM):
  // what another container's namespace path to it is translated to.
  initPid: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1))),
});

export const SandboxV1_1 = v.looseObject({
  ...SandboxV1.entries,
  formatVersion: v.literal("1.1"),
  vm: v.optional(VmV1_1),
  proxy: v.optional(ProxyV1_1),
  snapshots: v.optional(v.array(SnapshotV1_1)),
  network: v.optional(NetworkV1_1),
  containers: v.array(ContainerV1_1),
});
