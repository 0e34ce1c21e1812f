import type { DescMethod } from "@bufbuild/protobuf";
import { AgentService } from "./gen/husk/agent/v1/agent_pb.ts";

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
  createContainer: "containers",
  startContainer: "containers",
  removeContainer: "containers",
  pauseContainer: "pause",
  resumeContainer: "pause",
  listProcesses: "ps",
  statsContainer: "stats",
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
    ...(r.terminal === true ? (["tty"] as const) : []),
    ...((r.rootfs as { source?: { case?: string } } | undefined)?.source?.case === "overlay"
      ? (["overlay-rootfs"] as const)
      : []),
  ],
  execProcess: (r) => (r.tty === true ? ["exec-tty"] : []),
  signalProcess: (r) => (r.all === true ? ["signal-all"] : []),
};

// Every capability a call with this request needs.
export function requiredCapabilities(method: AgentMethodName, req: object = {}): Capability[] {
  const base = RPC_CAPABILITY[method];
  const extra = FIELD_CAPABILITIES[method]?.(req as Req) ?? [];
  return base ? [base, ...extra] : extra;
}

export function methodByName(name: string): DescMethod | undefined {
  return AgentService.methods.find((m) => m.name === name);
}
