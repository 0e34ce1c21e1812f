import { randomBytes } from "node:crypto";
import { ErrorCode, HuskError, errorCode, errorMessage, log } from "../core/index.ts";
import { running } from "../hypervisor/index.ts";
import type { SandboxDoc } from "../persist/index.ts";
import { connectAgent, type AgentClient } from "../protocol/index.ts";
import type { Context } from "./context.ts";
import { reviveProxy } from "./proxy.ts";
import { driverOfDoc, vmOf } from "./vm.ts";

export { driverOfDoc, vmOf } from "./vm.ts";

export interface ConnectOptions {
  timeoutMs?: number; // every call's deadline (default: none)
  what?: string; // the operation, named when its deadline passes
  locked?: boolean; // the caller holds the sandbox lock: a dead proxy is not replaced here
}

// The deadline of an agent call made while the sandbox lock is held: a hung
// guest then holds the lock for at most this long, less than the 30 s another
// command (delete --force) waits for it.
export const LOCKED_CALL_MS = 15_000;

// Talks to the sandbox's agent under the capabilities negotiated when the
// sandbox was created: an upgraded runtime keeps to what the old agent offers.
export async function connect(ctx: Context, given: SandboxDoc, opts: ConnectOptions = {}): Promise<AgentClient> {
  const doc = given.proxy && !opts.locked && !running(given.proxy.process) ? await reviveProxy(ctx, given) : given;
  const negotiated = doc.agent
    ? { agentVersion: doc.agent.version, protocolVersion: Number(doc.agent.protocolVersion), capabilities: doc.agent.capabilities }
    : undefined;
  const base = { sandboxId: doc.id, negotiated, timeoutMs: opts.timeoutMs };
  // The channel recorded at the handshake: the agent's own socket (local) or
  // the sandbox's proxy in front of a VM's single agent stream.
  const recorded = doc.agent?.channel;
  if (recorded?.kind === "unix") return connectAgent({ unix: recorded.path }, { ...base, what: describeChannel(doc, recorded.path) });
  const driver = await driverOfDoc(ctx, doc);
  const vm = vmOf(doc);
  const channel = driver.channel(vm);
  if (channel.kind === "unix") return connectAgent({ unix: channel.path }, { ...base, what: describeChannel(doc, channel.path) });
  return connectAgent(() => driver.dialAgent(vm), base);
}

// For errors: "the agent of sandbox X through its proxy at P".
const describeChannel = (doc: SandboxDoc, path: string): string =>
  doc.proxy?.socket === path ? `the agent of sandbox ${doc.id} through its proxy at ${path}` : `the agent of sandbox ${doc.id} at ${path}`;

export async function withAgent<T>(ctx: Context, doc: SandboxDoc, fn: (a: AgentClient) => Promise<T>, opts?: ConnectOptions): Promise<T> {
  const agent = await connect(ctx, doc, opts);
  try {
    return await fn(agent);
  } catch (e) {
    if (!opts?.timeoutMs || errorCode(e) !== ErrorCode.DeadlineExceeded) throw e;
    const what = opts.what ? `${opts.what}: ` : "";
    throw new HuskError(`${what}${errorMessage(e)} (gave up after ${opts.timeoutMs} ms)`, { code: ErrorCode.DeadlineExceeded, cause: e });
  } finally {
    agent.close();
  }
}

// After a restore from a template or a checkpoint: the host's clock and fresh
// entropy. An agent without "refresh" keeps the saved clock (said once).
export async function refreshGuest(agent: AgentClient, sandboxId: string): Promise<void> {
  if (!agent.has("refresh")) return log.warn(`sandbox ${sandboxId}: its agent cannot take the host's clock after a restore (no "refresh")`);
  const r = await agent.rpc.refreshGuest({ realtimeNs: BigInt(Date.now()) * 1_000_000n, entropy: randomBytes(64) });
  log.debug(`sandbox ${sandboxId}: guest clock stepped by ${r.steppedNs} ns`);
}
