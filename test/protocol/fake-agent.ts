import { Code, ConnectError } from "@connectrpc/connect";
import { GetContainerStateResponse_Status, OutputStream } from "../../lib/protocol/index.ts";
import type { AgentImpl } from "../../lib/protocol/server/index.ts";

// A tiny in-memory agent for protocol tests: containers are records, the
// "process" writes back what it got on stdin and exits when stdin closes.
export interface FakeContainer {
  started: boolean;
  paused: boolean;
  stdin: Uint8Array[];
  exit?: { exitStatus: number; signal: number };
  waiters: ((e: { exitStatus: number; signal: number }) => void)[];
}

export function fakeAgent(): AgentImpl & { containers: Map<string, FakeContainer>; calls: string[] } {
  const containers = new Map<string, FakeContainer>();
  const calls: string[] = [];
  const get = (id: string) => {
    const c = containers.get(id);
    if (!c) throw new ConnectError(`container ${JSON.stringify(id)} does not exist`, Code.NotFound);
    return c;
  };
  const finish = (c: FakeContainer, exit: { exitStatus: number; signal: number }) => {
    c.exit = exit;
    for (const w of c.waiters.splice(0)) w(exit);
  };
  return {
    containers,
    calls,
    health: () => {
      calls.push("health");
      return { status: 1, uptimeSeconds: 1 };
    },
    setupSandbox: (req) => ({ guest: { hostname: req.hostname, kernelRelease: "test", bootId: "b" } }),
    teardownSandbox: () => ({}),
    getGuestDetails: () => ({ guest: { kernelRelease: "test" } }),
    createContainer: (req) => {
      if (containers.has(req.containerId))
        throw new ConnectError(`container ${req.containerId} exists`, Code.AlreadyExists);
      containers.set(req.containerId, { started: false, paused: false, stdin: [], waiters: [] });
      return { pid: 4242 };
    },
    startContainer: (req) => {
      get(req.containerId).started = true;
      return {};
    },
    removeContainer: (req) => {
      get(req.containerId);
      containers.delete(req.containerId);
      return {};
    },
    signalProcess: (req) => {
      finish(get(req.containerId), { exitStatus: 128 + req.signal, signal: req.signal });
      return {};
    },
    waitProcess: (req) => {
      const c = get(req.containerId);
      return c.exit ?? new Promise((r) => c.waiters.push(r));
    },
    writeStdin: (req) => {
      get(req.containerId).stdin.push(req.data);
      return { written: BigInt(req.data.byteLength) };
    },
    closeStdin: (req) => {
      finish(get(req.containerId), { exitStatus: 0, signal: 0 });
      return {};
    },
    async *streamOutput(req) {
      const c = get(req.containerId);
      for (const data of c.stdin) yield { stream: OutputStream.STDOUT, data };
      yield { stream: OutputStream.STDOUT, eof: true };
      yield { stream: OutputStream.STDERR, data: new TextEncoder().encode("done\n") };
      yield { stream: OutputStream.STDERR, eof: true };
    },
    execProcess: (req) => {
      get(req.containerId);
      return { pid: 4343 };
    },
    pauseContainer: (req) => {
      get(req.containerId).paused = true;
      return {};
    },
    resumeContainer: (req) => {
      get(req.containerId).paused = false;
      return {};
    },
    configureNetwork: () => {
      calls.push("configureNetwork");
      return {};
    },
    refreshGuest: () => {
      calls.push("refreshGuest");
      return { steppedNs: 0n };
    },
    getContainerState: (req) => {
      const c = get(req.containerId);
      const S = GetContainerStateResponse_Status;
      const status = c.exit ? S.STOPPED : c.paused ? S.PAUSED : c.started ? S.RUNNING : S.CREATED;
      return { status, pid: 4242, exitStatus: c.exit?.exitStatus ?? 0, signal: c.exit?.signal ?? 0 };
    },
    updateContainer: (req) => {
      get(req.containerId);
      calls.push("updateContainer");
      return {};
    },
    renameContainer: (req) => {
      const c = get(req.containerId);
      if (containers.has(req.newId)) throw new ConnectError(`container ${req.newId} exists`, Code.AlreadyExists);
      containers.delete(req.containerId);
      containers.set(req.newId, c);
      return {};
    },
    listProcesses: (req) => {
      get(req.containerId);
      return { processes: [{ pid: 4242, args: ["sh"] }] };
    },
    statsContainer: (req) => {
      get(req.containerId);
      return { cpu: { usageNanos: 1000n }, memory: { usageBytes: 4096n } };
    },
    resizeTerminal: (req) => {
      get(req.containerId);
      return {};
    },
  };
}
