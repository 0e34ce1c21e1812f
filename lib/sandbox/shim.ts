import { constants } from "node:os";
import { ErrorCode, HuskError, errorCode, errorMessage, log } from "../core/index.ts";
import { PersistError, type SandboxDoc } from "../persist/index.ts";
import type { AgentClient } from "../protocol/client/index.ts";
import { connect, driverOfDoc } from "./agent.ts";
import { killRemains, vmAlive } from "./vm.ts";
import type { Context } from "./context.ts";
import type { ShimTarget } from "./shim-spawn.ts";
import type { ShimIO } from "../relay/index.ts";
import { drainOutput, pumpInput, pumpOutput, resizer, waitExit } from "./stdio.ts";

// The agent connection, replaced when the proxy under it dies: signals and
// resizes always go through the current one.
interface Link {
  agent: AgentClient;
}

function forwardSignals(link: Link, t: ShimTarget, io: ShimIO): void {
  io.onSignal((signal) => {
    link.agent.rpc
      .signalProcess({ containerId: t.containerId, execId: t.execId ?? "", signal })
      .catch((e) => log.warn(`shim: forwarding signal ${signal}: ${errorMessage(e)}`));
  });
}

// What a container killed with its VM exits with, as SIGKILL gives it.
export const KILLED = 128 + constants.signals.SIGKILL;
const WATCH_MS = 500;

// A stand-in's life: relay stdio, forward signals, wait for the exit status,
// record it, and return it to exit with. If the VMM or virtiofsd dies, the
// container died with it: the status is "killed" within a second, as podman
// and containerd expect of the pid they wait on. Runs in `husk shim` (io: its
// own stdio) or, for each relayed shim, in its sandbox's proxy.
export async function runShim(ctx: Context, t: ShimTarget, io: ShimIO, opts: { tty?: boolean } = {}): Promise<number> {
  const doc = await createdSandbox(ctx, t);
  if (!doc) return 255; // the create that started us failed and cleaned up
  const died = vmDeath(ctx, doc);
  const code = await Promise.race([relayUntilExit(ctx, doc, t, io, opts, died.isDead), died.promise]);
  died.stop();
  if (code === STAND_IN_GONE) return code; // as a killed shim, it records nothing
  if (!t.execId) await recordExit(ctx, t, code);
  return code;
}

// A relayed shim that went away before its process exited (killed, or
// replaced by a restore's): its relay stops as the shim itself would have
// stopped, leaving the process's output and stdin to the agent.
export const STAND_IN_GONE = -1;

interface VmWatch {
  promise: Promise<number>;
  isDead: () => boolean;
  stop: () => void;
}

// The proxy relays every container of its sandbox, and each relay asks the
// same question: one watch per VM in a process, stopped with its last user.
const watches = new Map<string, VmWatch & { users: number }>();

function vmDeath(ctx: Context, doc: SandboxDoc): VmWatch {
  const key = JSON.stringify([doc.id, doc.vm]); // a restore gives the sandbox a new VM
  let w = watches.get(key);
  if (!w) watches.set(key, (w = { ...pollVm(ctx, doc), users: 0 }));
  const shared = w;
  shared.users++;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    if (--shared.users > 0) return;
    shared.stop();
    watches.delete(key);
  };
  return { promise: shared.promise, isDead: shared.isDead, stop };
}

// Polls /proc for the VM's vital processes (none for the local driver).
function pollVm(ctx: Context, doc: SandboxDoc): VmWatch {
  let timer: ReturnType<typeof setInterval> | undefined;
  let dead = false;
  let stopped = false;
  const promise = driverOfDoc(ctx, doc).then(
    (driver) =>
      new Promise<number>((resolve) => {
        if (stopped) return;
        timer = setInterval(() => {
          if (vmAlive(driver, doc.vm!)) return;
          log.warn(`shim: the VM of sandbox ${doc.id} lost its VMM or virtiofsd; its containers died with it`);
          dead = true;
          clearInterval(timer);
          void killRemains(driver, doc.vm!).finally(() => resolve(KILLED));
        }, WATCH_MS);
      }),
  );
  return { promise, isDead: () => dead, stop: () => ((stopped = true), clearInterval(timer)) };
}

// Relays until the process exits. A call cut off by a dying proxy is
// retried through a new one (connect replaces it); the agent kept the output.
async function relayUntilExit(ctx: Context, doc: SandboxDoc, t: ShimTarget, io: ShimIO, opts: { tty?: boolean }, vmDead: () => boolean): Promise<number> {
  const link: Link = { agent: await connect(ctx, doc) };
  let gone = false;
  void io.gone?.then(() => ((gone = true), link.agent.close()));
  const warn = (what: string) => (e: unknown) => void (gone || log.warn(`shim: ${what}: ${errorMessage(e)}`));
  forwardSignals(link, t, io);
  if (opts.tty) io.onResize((rows, cols) => resizer(link.agent, t)(rows, cols));
  pumpInput(link.agent, t, io.input).catch(warn("input"));
  for (let reconnected = false; ; reconnected = true) {
    const output = pumpOutput(link.agent, t, io.write).catch(warn("output"));
    try {
      const code = await waitExit(link.agent, t);
      await drainOutput(output);
      link.agent.close();
      return code;
    } catch (e) {
      if (gone) return STAND_IN_GONE;
      // A guest whose agent died starts a new one, which never ran this
      // process: it died with the old agent (the new one removes its remains).
      if (reconnected && errorCode(e) === ErrorCode.NotFound) {
        log.warn(`shim: the agent of sandbox ${doc.id} restarted without ${t.execId ? `exec ${t.execId}` : `container ${t.containerId}`}; it died with the old one`);
        return KILLED;
      }
      if (errorCode(e) !== ErrorCode.Unavailable) throw e;
      log.warn(`shim: lost the agent (${errorMessage(e)}); reconnecting`);
      link.agent.close();
      await Bun.sleep(WATCH_MS * 2); // the VM watch decides first if the VM died
      if (vmDead()) return KILLED;
      link.agent = await connect(ctx, ctx.store.load(t.sandboxId));
    }
  }
}

const CREATE_WAIT_MS = 120_000;

// `husk create` starts the shim before it records the container as created
// (and, for a new sandbox, how to reach its agent): wait for that record.
async function createdSandbox(ctx: Context, t: ShimTarget): Promise<SandboxDoc | undefined> {
  const deadline = Date.now() + CREATE_WAIT_MS;
  for (;;) {
    const doc = ctx.store.tryLoad(t.sandboxId);
    const c = doc?.containers.find((x) => x.id === t.containerId);
    if (!doc || !c) return undefined;
    if (c.state !== "creating") return doc;
    if (Date.now() > deadline) throw new HuskError(`container ${t.containerId} is still being created after ${CREATE_WAIT_MS} ms`);
    await Bun.sleep(20);
  }
}

async function recordExit(ctx: Context, t: ShimTarget, code: number): Promise<void> {
  try {
    await ctx.store.update(t.sandboxId, (d) => {
      const c = d.containers.find((x) => x.id === t.containerId);
      if (!c) return;
      c.state = "stopped";
      c.exitStatus = code;
      c.finishedAt = new Date().toISOString();
    });
  } catch (e) {
    if (!(e instanceof PersistError && e.reason === "not-found")) log.warn(`shim: recording exit: ${errorMessage(e)}`);
  }
}
