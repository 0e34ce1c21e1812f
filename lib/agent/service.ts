import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { ErrorCode, HuskError, errorMessage } from "../core/index.ts";
import { parseSpec } from "../oci/index.ts";
import { HealthResponse_Status, OutputStream, statusToMsg, type Rootfs as RootfsMsg } from "../protocol/index.ts";
import type { AgentImpl } from "../protocol/server/index.ts";
import type { Engine, ExitStatus, Rootfs } from "./engine/index.ts";
import { guestDetails } from "./guest.ts";
import { configureNetwork } from "./network.ts";
import { refreshGuest } from "./refresh.ts";
import { mergeOutput } from "./output.ts";

export interface ServiceOptions {
  engine: Engine;
  // In a VM the agent owns the machine: it mounts shares and sets the hostname.
  // On the host (local driver) it must not touch either.
  guest: boolean;
  ociRuntime: string;
  ociRuntimeVersion: Promise<string>; // asked of the runtime while the agent starts serving
}

// Every capability this agent backs with an implementation.
export const AGENT_CAPABILITIES = [
  "health", "sandbox", "containers", "stdio", "tty", "exec", "exec-tty",
  "signal-all", "resize", "ps", "pause", "stats", "overlay-rootfs", "container-state", "network", "update", "refresh",
  "network-remac", "network-reconfigure", "rename",
] as const;

// Methods throw HuskErrors; serveAgent sends each with the Connect code of its
// ErrorCode (toConnectError), so nothing here picks codes.

const noConsoleSocket = () =>
  new HuskError("this agent cannot hand a terminal to a host console socket", { code: ErrorCode.Unimplemented });

function engineRootfs(r: RootfsMsg | undefined, id: string): Rootfs {
  switch (r?.source.case) {
    case "path":
    case "sharedPath":
      return { kind: "path", path: r.source.value };
    case "overlay":
      return { kind: "overlay", lower: r.source.value.lowerDirs };
    default:
      throw new HuskError(`invalid rootfs for container ${id}: none given`, { code: ErrorCode.InvalidArgument });
  }
}

function parseSpecJson(json: string, id: string) {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new HuskError(`invalid OCI spec for container ${id}: ${errorMessage(e)}`, { code: ErrorCode.InvalidArgument });
  }
  return parseSpec(raw, `OCI spec for container ${id}`);
}

function parseResources(json: string, id: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new HuskError(`invalid resources for container ${id}: ${errorMessage(e)}`, { code: ErrorCode.InvalidArgument });
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new HuskError(`invalid resources for container ${id}: not a JSON object`, { code: ErrorCode.InvalidArgument });
  return raw as Record<string, unknown>;
}

async function mountAll(mounts: { source: string; target: string; fstype: string; options: string[] }[]): Promise<void> {
  for (const m of mounts) {
    mkdirSync(m.target, { recursive: true });
    const opts = m.options.length ? ["-o", m.options.join(",")] : [];
    const p = Bun.spawn(["mount", "-t", m.fstype, ...opts, m.source, m.target], { stderr: "pipe" });
    if ((await p.exited) !== 0)
      throw new HuskError(`mount ${m.source} on ${m.target}: ${(await new Response(p.stderr).text()).trim()}`, {
        code: ErrorCode.Internal,
      });
  }
}

export function agentService(o: ServiceOptions): AgentImpl {
  const { engine } = o;
  const started = Date.now();
  const execRef = (r: { containerId: string; execId: string }) => [r.containerId, r.execId || undefined] as const;
  return {
    health: () => ({ status: HealthResponse_Status.SERVING, uptimeSeconds: (Date.now() - started) / 1000 }),
    setupSandbox: async (r) => {
      if (o.guest) {
        await mountAll(r.mounts);
        if (r.hostname) setHostname(r.hostname);
      } else if (r.mounts.length) {
        throw new HuskError("an agent on the host (local driver) does not mount shared filesystems", {
          code: ErrorCode.Unimplemented,
        });
      }
      return { guest: guestDetails(o.ociRuntime, await o.ociRuntimeVersion) };
    },
    teardownSandbox: async () => {
      await engine.close();
      return {};
    },
    getGuestDetails: async () => ({ guest: { ...guestDetails(o.ociRuntime, await o.ociRuntimeVersion), ...(await engine.holdings()) } }),
    configureNetwork: async (r) => {
      if (!o.guest)
        throw new HuskError("an agent on the host (local driver) does not configure networks: its containers join the netns", {
          code: ErrorCode.Unimplemented,
        });
      await configureNetwork(r);
      return {};
    },
    // On the host (local driver) the clock and random pool are the host's own.
    refreshGuest: (r) => ({ steppedNs: o.guest ? refreshGuest(r.realtimeNs, r.entropy) : 0n }),
    createContainer: async (r) => {
      if (r.consoleSocket) throw noConsoleSocket();
      const spec = parseSpecJson(r.ociSpecJson, r.containerId);
      const state = await engine.create(r.containerId, { spec, rootfs: engineRootfs(r.rootfs, r.containerId), terminal: r.terminal });
      return { pid: state.pid };
    },
    startContainer: async (r) => (await engine.start(r.containerId), {}),
    updateContainer: async (r) => (await engine.update(r.containerId, parseResources(r.resourcesJson, r.containerId)), {}),
    removeContainer: async (r) => (await engine.delete(r.containerId, { force: r.force }), {}),
    renameContainer: async (r) => (await engine.rename(r.containerId, r.newId), {}),
    pauseContainer: async (r) => (await engine.pause(r.containerId), {}),
    resumeContainer: async (r) => (await engine.resume(r.containerId), {}),
    listProcesses: async (r) => {
      const pids = await engine.ps(r.containerId);
      const execs = engine.execPids(r.containerId);
      return { processes: pids.map((pid) => ({ ...processInfo(pid), execId: execs.get(pid) ?? "" })) };
    },
    getContainerState: (r) => {
      const s = engine.state(r.containerId);
      return {
        status: statusToMsg(s.status),
        pid: s.pid,
        exitStatus: s.exit ? exitStatus(s.exit) : 0,
        signal: s.exit?.signal ?? 0,
        execIds: s.execs,
      };
    },
    statsContainer: async (r) => {
      const s = await engine.stats(r.containerId);
      return {
        cpu: { usageNanos: BigInt(s.cpuUsageNs) },
        memory: { usageBytes: BigInt(s.memoryBytes) },
        pidsCurrent: BigInt(s.pids),
      };
    },
    execProcess: async (r) => {
      if (r.consoleSocket) throw noConsoleSocket();
      const user = r.user ? { uid: r.user.uid, gid: r.user.gid, additionalGids: r.user.additionalGids } : undefined;
      await engine.exec(r.containerId, {
        execId: r.execId || undefined, args: r.args, env: r.env.length ? r.env : undefined,
        cwd: r.cwd || undefined, user, terminal: r.tty,
      });
      return { pid: 0 };
    },
    signalProcess: async (r) => {
      const [id, execId] = execRef(r);
      await engine.signal(id, r.signal, { execId, all: r.all });
      return {};
    },
    waitProcess: async (r) => {
      const exit = await engine.wait(...execRef(r));
      return { exitStatus: exitStatus(exit), signal: exit.signal ?? 0 };
    },
    writeStdin: async (r) => ({ written: BigInt(await engine.writeStdin(...execRef(r), r.data)) }),
    closeStdin: async (r) => (await engine.closeStdin(...execRef(r)), {}),
    streamOutput: async function* (r, context) {
      const [id, execId] = execRef(r);
      const wanted = r.streams.length ? r.streams : [OutputStream.STDOUT, OutputStream.STDERR];
      const sources = wanted.map((s) => [s, engine.output(id, execId, s === OutputStream.STDERR ? "stderr" : "stdout")] as [OutputStream, ReturnType<Engine["output"]>]);
      yield* mergeOutput(sources, context.signal);
    },
    resizeTerminal: (r) => {
      const [id, execId] = execRef(r);
      engine.resize(id, execId, { height: r.rows, width: r.cols });
      return {};
    },
  };
}

// As shells report it: the exit code, or 128 + the signal that ended it.
const exitStatus = (exit: ExitStatus) => (exit.signal ? 128 + exit.signal : exit.exitCode);

function processInfo(pid: number) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    const args = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    return { pid, ppid, args, execId: "" };
  } catch {
    return { pid, ppid: 0, args: [], execId: "" };
  }
}

// The guest's own hostname (sethostname(2) through procfs): spawning
// hostname(1) cost ~100 ms of every sandbox start under TCG.
function setHostname(name: string): void {
  try {
    writeFileSync("/proc/sys/kernel/hostname", name);
  } catch (e) {
    throw new HuskError(`cannot set the guest's hostname to ${JSON.stringify(name)}: ${errorMessage(e)}`, { code: ErrorCode.InvalidArgument });
  }
}
