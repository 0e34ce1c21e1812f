import { join } from "node:path";
import { childEnv } from "../config/index.ts";
import { errorMessage, log } from "../core/index.ts";
import { running, startDaemon, stopProcess } from "../hypervisor/index.ts";
import type { ProxyRecord, SandboxDoc } from "../persist/index.ts";
import { driverOfDoc, vmOf } from "./agent.ts";
import type { Context } from "./context.ts";
import { socketDir } from "./paths.ts";

// Not agent.sock: with a VM driver that name is the VMM's end of the channel.
export const proxySocket = (ctx: Context, sandboxId: string) => join(socketDir(ctx, sandboxId), "proxy.sock");

const VM_CHECK_MS = 1000;

// `husk proxy`: serves proxy.sock until SIGTERM, or until its VM is gone
// (then nothing is left to forward to, and nobody may be left to stop it).
export async function runProxy(ctx: Context, sandboxId: string): Promise<void> {
  const doc = ctx.store.load(sandboxId);
  const vm = vmOf(doc);
  const driver = await driverOfDoc(ctx, doc);
  // Loaded here: only `husk proxy` serves, every other command is a client.
  const { serveProxy } = await import("../protocol/proxy.ts");
  // One bad call must not leave the sandbox unmanageable: log it and go on.
  process.on("uncaughtException", (e) => log.error(`proxy: ${errorMessage(e)}`));
  const server = serveProxy(proxySocket(ctx, sandboxId), () => driver.dialAgent(vm, 30_000));
  await new Promise<void>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => resolve());
    const timer = setInterval(() => {
      if (running(driver.mainProcess(vm))) return;
      log.warn(`proxy: the VM of sandbox ${sandboxId} is gone; exiting`);
      clearInterval(timer);
      resolve();
    }, VM_CHECK_MS);
  });
  await server.close();
}

// Starts the proxy for a VM whose agent channel is a single byte stream; the
// caller records it (doc.proxy). Every husk process then uses its socket.
export async function startProxy(ctx: Context, sandboxId: string): Promise<ProxyRecord> {
  const socket = proxySocket(ctx, sandboxId);
  const logPath = join(ctx.store.sandboxDir(sandboxId), "proxy.log");
  const env = childEnv(ctx.settings);
  const process = await startDaemon({ args: ["proxy", "--sandbox", sandboxId], logPath, socket, what: "agent proxy", env });
  return { process, socket };
}

export async function stopProxy(doc: SandboxDoc): Promise<void> {
  await stopProcess(doc.proxy?.process, undefined, 3000);
}
