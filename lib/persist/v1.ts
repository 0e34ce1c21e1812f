// Persist format 1.0 — FROZEN. Once a release has written this format, this file
// never changes again: golden files under test/fixtures/persist/1.0 must load
// forever. Additive changes go into a new minor version (v1_1.ts plus a migration
// step in formats.ts); anything an older release could not read is a new major.
//
// Every object is a looseObject so that fields written by a newer minor release
// are kept on load and written back unchanged. Nothing here may import from the
// rest of the tree: other modules change, this file does not.
import * as v from "valibot";

const Pid = v.pipe(v.number(), v.integer(), v.minValue(1));
const Timestamp = v.pipe(v.string(), v.isoTimestamp()); // RFC 3339, as OCI `created`
const Strings = v.array(v.string());

// The husk release that wrote something.
export const ReleaseV1 = v.looseObject({ version: v.string(), commit: v.string() });

export const AgentChannelV1 = v.looseObject({
  kind: v.picklist(["unix", "virtio-serial", "hybrid-vsock", "vsock"]),
  path: v.string(),
  port: v.optional(v.number()),
});

// A superset of the hypervisor drivers' VmState: what a driver needs to find its
// VM again after the runtime process that started it has gone.
export const HypervisorV1 = v.looseObject({
  driver: v.picklist(["local", "qemu", "clh"]),
  vmDir: v.string(),
  pid: v.optional(Pid),
  pidStartTime: v.optional(v.number()), // /proc start time: tells a recycled pid from ours
  virtiofsdPid: v.optional(Pid),
  apiSocket: v.optional(v.string()),
  agent: AgentChannelV1,
  assetsVersion: v.optional(v.string()),
  extra: v.optional(v.record(v.string(), v.unknown())),
  vmm: v.optional(
    v.looseObject({
      binary: v.optional(v.string()),
      version: v.optional(v.string()),
      args: v.optional(Strings),
      config: v.optional(v.record(v.string(), v.unknown())), // e.g. cloud-hypervisor VmConfig
    }),
  ),
});

// Recorded after the handshake: the runtime never calls what the agent did not offer.
export const AgentV1 = v.looseObject({
  channel: AgentChannelV1,
  version: v.string(),
  protocolVersion: v.string(),
  capabilities: Strings,
  connectedAt: v.optional(Timestamp),
});

export const VirtiofsdV1 = v.looseObject({
  pid: v.optional(Pid),
  pidStartTime: v.optional(v.number()),
  socket: v.string(),
  sharedDir: v.string(),
  tag: v.optional(v.string()),
});

export const NetworkV1 = v.looseObject({
  mode: v.string(), // "none", "netns", ...
  netns: v.optional(v.string()),
  interfaces: v.optional(
    v.array(
      v.looseObject({
        name: v.string(),
        mac: v.optional(v.string()),
        addresses: v.optional(Strings),
        tap: v.optional(v.string()),
      }),
    ),
  ),
});

export const DeviceV1 = v.looseObject({
  kind: v.string(),
  id: v.optional(v.string()),
  hostPath: v.optional(v.string()),
  guestPath: v.optional(v.string()),
});

export const SandboxConfigV1 = v.looseObject({
  cpus: v.optional(v.number()),
  memoryMiB: v.optional(v.number()),
  hypervisor: v.optional(v.string()), // as requested; hypervisor.driver is what ran
  sharedDir: v.optional(v.string()),
});

// OCI process and mounts: kept as the bundle gave them, checked only as far as
// husk itself reads them.
export const ProcessV1 = v.looseObject({
  args: v.optional(Strings),
  env: v.optional(Strings),
  cwd: v.optional(v.string()),
  terminal: v.optional(v.boolean()),
});

export const MountV1 = v.looseObject({
  destination: v.string(),
  source: v.optional(v.string()),
  type: v.optional(v.string()),
  options: v.optional(Strings),
});

export const Annotations = v.record(v.string(), v.string());

export const ContainerV1 = v.looseObject({
  id: v.string(),
  bundle: v.string(),
  rootfs: v.string(),
  // OCI states; runc's "paused" included.
  state: v.picklist(["creating", "created", "running", "paused", "stopped"]),
  pid: v.optional(Pid), // the `husk shim` on the host that stands for the container
  pidStartTime: v.optional(v.number()),
  process: v.optional(ProcessV1),
  mounts: v.optional(v.array(MountV1)),
  exitStatus: v.optional(v.pipe(v.number(), v.integer())),
  createdAt: Timestamp,
  startedAt: v.optional(Timestamp),
  finishedAt: v.optional(Timestamp),
  annotations: v.optional(Annotations),
});

export const SandboxV1 = v.looseObject({
  formatVersion: v.literal("1.0"),
  id: v.string(),
  state: v.picklist(["creating", "running", "paused", "stopped"]),
  createdAt: Timestamp,
  createdBy: ReleaseV1,
  writtenBy: ReleaseV1,
  config: SandboxConfigV1,
  hypervisor: v.optional(HypervisorV1),
  agent: v.optional(AgentV1),
  virtiofsd: v.optional(VirtiofsdV1),
  network: v.optional(NetworkV1),
  devices: v.optional(v.array(DeviceV1)),
  annotations: v.optional(Annotations),
  containers: v.array(ContainerV1),
});
