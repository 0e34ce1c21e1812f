import type { AgentService } from "./gen/husk/agent/v1/agent_pb.ts";

// Revision of husk.agent.v1. Additions within v1 are announced as
// capabilities, so this changes only with a new package (v2).
export const PROTOCOL_VERSION = 1;

// Named features an agent may advertise in its handshake.
export const CAPABILITIES = [
  "health",
  "sandbox", // SetupSandbox, TeardownSandbox, GetGuestDetails
  "containers", // create/start/remove, signal, wait
  "stdio", // WriteStdin, CloseStdin, StreamOutput
  "tty", // CreateContainer with terminal
  "exec",
  "exec-tty", // ExecProcess with tty
  "signal-all", // SignalProcess with all
  "resize",
  "ps",
  "pause",
  "stats",
  "overlay-rootfs", // Rootfs.overlay
  "console-socket", // terminal master handed to a host socket (agent on the host)
  "container-state", // GetContainerState: status, pid and exit of one container
  "network", // ConfigureNetwork: the host netns's interfaces and routes, in the guest
  "update", // UpdateContainer: a live container's resource limits
  "refresh", // RefreshGuest: clock and random pool after a restore
  "network-remac", // ConfigureNetwork with guest_mac: a device found by its old MAC takes the host's
  "network-reconfigure", // ConfigureNetwork with replace: configured devices are cleared and configured again
  "rename", // RenameContainer: a live container takes another id (a checkpoint restored under a new name)
] as const;
export type Capability = (typeof CAPABILITIES)[number];

export type AgentMethodName = keyof typeof AgentService.method;

// The capability each RPC needs; Handshake needs none and always works.
export const RPC_CAPABILITY: Record<AgentMethodName, Capability | null> = {
  handshake: null,
  health: "health",
  setupSandbox: "sandbox",
  teardownSandbox: "sandbox",
  getGuestDetails: "sandbox",
  configureNetwork: "network",
  refreshGuest: "refresh",
  createContainer: "containers",
  startContainer: "containers",
  removeContainer: "containers",
  pauseContainer: "pause",
  resumeContainer: "pause",
  listProcesses: "ps",
  statsContainer: "stats",
  getContainerState: "container-state",
  updateContainer: "update",
  renameContainer: "rename",
  execProcess: "exec",
  signalProcess: "containers",
  waitProcess: "containers",
  writeStdin: "stdio",
  closeStdin: "stdio",
  streamOutput: "stdio",
  resizeTerminal: "resize",
};

type Req = Record<string, unknown>;

// Features selected by a request field rather than by the RPC itself.
const FIELD_CAPABILITIES: Partial<Record<AgentMethodName, (req: Req) => Capability[]>> = {
  createContainer: (r) => [
    ...(r.consoleSocket ? (["console-socket"] as const) : []),
    ...(r.terminal === true ? (["tty"] as const) : []),
    ...((r.rootfs as { source?: { case?: string } } | undefined)?.source?.case === "overlay"
      ? (["overlay-rootfs"] as const)
      : []),
  ],
  execProcess: (r) => [
    ...(r.tty === true ? (["exec-tty"] as const) : []),
    ...(r.consoleSocket ? (["console-socket"] as const) : []),
  ],
  signalProcess: (r) => (r.all === true ? ["signal-all"] : []),
  configureNetwork: (r) => [
    ...((r.interfaces as { guestMac?: string }[] | undefined)?.some((i) => i.guestMac) ? (["network-remac"] as const) : []),
    ...(r.replace === true ? (["network-reconfigure"] as const) : []),
  ],
};

// Field-level capabilities qualify one RPC; an agent may only advertise one
// when it implements that RPC.
const FIELD_CAPABILITY_RPC: Partial<Record<Capability, AgentMethodName>> = {
  tty: "createContainer",
  "overlay-rootfs": "createContainer",
  "exec-tty": "execProcess",
  "signal-all": "signalProcess",
  "console-socket": "createContainer",
  "network-remac": "configureNetwork",
  "network-reconfigure": "configureNetwork",
};

// The RPCs an agent must implement to advertise a capability.
export function capabilityRpcs(cap: string): AgentMethodName[] {
  const field = FIELD_CAPABILITY_RPC[cap as Capability];
  if (field) return [field];
  return (Object.keys(RPC_CAPABILITY) as AgentMethodName[]).filter((m) => RPC_CAPABILITY[m] === cap);
}

// Every capability a call with this request needs.
export function requiredCapabilities(method: AgentMethodName, req: object = {}): Capability[] {
  const base = RPC_CAPABILITY[method];
  const extra = FIELD_CAPABILITIES[method]?.(req as Req) ?? [];
  return base ? [base, ...extra] : extra;
}
