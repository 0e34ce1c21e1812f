import { join } from "node:path";
import { errorMessage, log, processStartTime, startDaemon, terminate } from "../core/index.ts";
import { driverFor, type DriverName, type VmState } from "../hypervisor/index.ts";
import type { SandboxDoc } from "../persist/index.ts";
import { serveProxy } from "../protocol/proxy.ts";
import type { Context } from "./context.ts";
import { socketDir } from "./paths.ts";

// Not agent.sock: with a VM driver that name is the VMM's end of the channel.
export const proxySocket = (ctx: Context, sandboxId: string) => join(socketDir(ctx, sandboxId), "proxy.sock");

// `husk proxy`: serves <sandbox dir>/agent.sock until SIGTERM.
export async function runProxy(ctx: Context, sandboxId: string): Promise<void> {
  const doc = ctx.store.load(sandboxId);
  const vm = doc.hypervisor as VmState;
  const driver = await driverFor(vm.driver as DriverName, ctx.settings);
  // One bad call must not leave the sandbox unmanageable: log it and go on.
  process.on("uncaughtException", (e) => log.error(`proxy: ${errorMessage(e)}`));
  const server = serveProxy(proxySocket(ctx, sandboxId), () => driver.dialAgent(vm, 30_000));
  await new Promise<void>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => resolve());
  });
  await server.close();
}

// Starts the proxy for a VM whose agent channel is a single byte stream and
// records it with the VM; returns the unix channel every husk process then uses.
export async function attachProxy(ctx: Context, doc: SandboxDoc): Promise<{ kind: "unix"; path: string }> {
  const path = proxySocket(ctx, doc.id);
  const args = ["--root", ctx.settings.root, "--persist", ctx.settings.persist, "proxy", "--sandbox", doc.id];
  const logPath = join(ctx.store.sandboxDir(doc.id), "proxy.log");
  const pid = await startDaemon({ args, logPath, socket: path, what: "agent proxy" });
  await ctx.store.update(doc.id, (x) => {
    x.hypervisor!.extra = { ...x.hypervisor!.extra, proxyPid: pid, proxyStartTime: processStartTime(pid) };
  });
  return { kind: "unix", path };
}

export async function stopProxy(doc: SandboxDoc): Promise<void> {
  const extra = doc.hypervisor?.extra as { proxyPid?: number; proxyStartTime?: number } | undefined;
  if (extra?.proxyPid) await terminate(extra.proxyPid, extra.proxyStartTime, 3000);
}
