import { constants } from "node:os";
import { HuskError, errorMessage, log } from "../core/index.ts";
import { PersistError, type SandboxDoc } from "../persist/index.ts";
import type { AgentClient } from "../protocol/client/index.ts";
import { connect } from "./agent.ts";
import type { Context } from "./context.ts";
import type { ShimTarget } from "./shim-spawn.ts";
import { relayTerminal, pumpInput, pumpOutput, waitExit } from "./stdio.ts";

const FORWARDED: NodeJS.Signals[] = ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"];

function forwardSignals(agent: AgentClient, t: ShimTarget): void {
  for (const sig of FORWARDED)
    process.on(sig, () => {
      agent.rpc
        .signalProcess({ containerId: t.containerId, execId: t.execId ?? "", signal: constants.signals[sig] })
        .catch((e) => log.warn(`shim: forwarding ${sig}: ${errorMessage(e)}`));
    });
}

// The shim's life: relay stdio, forward signals, wait for the exit status,
// record it, and exit with it. Output is drained before exiting (bounded).
// With tty, stdio is a terminal whose window size follows the caller's (and
// SIGHUP, the caller closing the master, reaches the container as a hangup).
export async function runShim(ctx: Context, t: ShimTarget, opts: { tty?: boolean } = {}): Promise<number> {
  const doc = await createdSandbox(ctx, t);
  if (!doc) return 255; // the create that started us failed and cleaned up
  const agent = await connect(ctx, doc);
  forwardSignals(agent, t);
  if (opts.tty) relayTerminal(agent, t);
  const output = pumpOutput(agent, t).catch((e) => log.warn(`shim: output: ${errorMessage(e)}`));
  pumpInput(agent, t).catch((e) => log.warn(`shim: input: ${errorMessage(e)}`));
  const code = await waitExit(agent, t);
  await Promise.race([output, Bun.sleep(2000)]);
  if (!t.execId) await recordExit(ctx, t, code);
  agent.close();
  return code;
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
