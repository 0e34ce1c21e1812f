import { join } from "node:path";
import { childEnv } from "../config/index.ts";
import { log } from "../core/index.ts";
import { rmSync } from "node:fs";
import { launchDaemon, running, stopProcess } from "../hypervisor/index.ts";
import type { ProxyRecord, SandboxDoc } from "../persist/index.ts";
import { driverOfDoc, vmAlive } from "./vm.ts";
import type { Context } from "./context.ts";
import { socketDir } from "./paths.ts";

// Not agent.sock: with a VM driver that name is the VMM's end of the channel.
export const proxySocket = (ctx: Context, sandboxId: string) => join(socketDir(ctx, sandboxId), "proxy.sock");
// Where the proxy relays the stdio of container processes' stand-ins. A
// proxy of a release without it has none, and its shims relay by themselves.
export const relaySocket = (ctx: Context, sandboxId: string) => join(socketDir(ctx, sandboxId), "relay.sock");

// Starts the proxy for a VM whose agent channel is a single byte stream; the
// caller records it (doc.proxy). Every husk process then uses its socket.
export async function startProxy(ctx: Context, sandboxId: string): Promise<ProxyRecord> {
  const { record, ready } = launchProxy(ctx, sandboxId);
  await ready;
  return record;
}

// A proxy started with its VM (husk create): it serves once the VM is
// recorded, so it may wait as long as a VM takes to start.
export function launchProxy(ctx: Context, sandboxId: string, timeoutMs?: number): { record: ProxyRecord; ready: Promise<void> } {
  const socket = proxySocket(ctx, sandboxId);
  const logPath = join(ctx.store.sandboxDir(sandboxId), "proxy.log");
  const { process, ready } = launchDaemon({ args: ["proxy", "--sandbox", sandboxId], logPath, socket, what: "agent proxy", env: childEnv(ctx.settings), timeoutMs });
  return { record: { process, socket }, ready };
}

// The proxy holds nothing a new one cannot rebuild (the agent keeps every
// process and its unread output), so a dead one is replaced and recorded by
// the next caller, while the VM lives. Callers racing here start one.
export async function reviveProxy(ctx: Context, doc: SandboxDoc): Promise<SandboxDoc> {
  const driver = await driverOfDoc(ctx, doc);
  return ctx.store.update(doc.id, async (d) => {
    if (!d.proxy || running(d.proxy.process) || !d.vm || !vmAlive(driver, d.vm)) return;
    log.warn(`sandbox ${d.id}: its agent proxy (pid ${d.proxy.process.pid}) is gone; starting another`);
    rmSync(d.proxy.socket, { force: true });
    d.proxy = await startProxy(ctx, d.id);
  });
}

export async function stopProxy(doc: SandboxDoc): Promise<void> {
  await stopProcess(doc.proxy?.process, undefined, 3000);
}
