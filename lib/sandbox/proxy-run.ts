import { HuskError, errorMessage, log } from "../core/index.ts";
import type { SandboxDoc } from "../persist/index.ts";
import { driverFor, resolveDriverName, running } from "../hypervisor/index.ts";
import { serveRelay, type RelayServer, type RelaySession } from "../relay/index.ts";
import { driverOfDoc, vmOf } from "./vm.ts";
import type { Context } from "./context.ts";
import { proxySocket, relaySocket } from "./proxy.ts";
import { KILLED, runShim } from "./shim.ts";

const VM_CHECK_MS = 1000;
const VM_WAIT_MS = 120_000;
// How long relayed shims get to learn that their VM is gone (the watch in
// runShim, then recording the exits) before the proxy ends.
const SETTLE_MS = 5000;

// `husk proxy`: serves proxy.sock and relay.sock until SIGTERM, or until its
// VM is gone (then nothing is left to forward to, and nobody may be left to
// stop it).
export async function runProxy(ctx: Context, sandboxId: string): Promise<void> {
  // Loaded here: only `husk proxy` serves, every other command is a client.
  // Loading (this and the configured driver) starts while the VM starts.
  const serving = import("../protocol/proxy.ts");
  serving.catch(() => {});
  driverFor(resolveDriverName(ctx.settings), ctx.settings).catch(() => {});
  const doc = await vmRecorded(ctx, sandboxId);
  const vm = vmOf(doc);
  const driver = await driverOfDoc(ctx, doc);
  const { serveProxy } = await serving;
  // One bad call must not leave the sandbox unmanageable: log it and go on.
  process.on("uncaughtException", (e) => log.error(`proxy: ${errorMessage(e)}`));
  const sessions = new Map<RelaySession, Promise<void>>();
  // The relay first: whoever sees proxy.sock (startDaemon) may spawn a shim.
  const relay = await serveRelay(relaySocket(ctx, sandboxId), sandboxId, (s) => void sessions.set(s, relayShim(ctx, s, sessions)));
  const server = serveProxy(proxySocket(ctx, sandboxId), () => driver.dialAgent(vm, 30_000));
  const end = await new Promise<End>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const)
      process.once(sig, () => resolve(running(driver.mainProcess(vm)) ? "stopped" : "deleted"));
    const timer = setInterval(() => {
      if (running(driver.mainProcess(vm))) return;
      log.warn(`proxy: the VM of sandbox ${sandboxId} is gone; exiting`);
      clearInterval(timer);
      resolve("vm-died");
    }, VM_CHECK_MS);
  });
  await settle(relay, sessions, end);
  await server.close();
}

// `husk create` starts the proxy while the VM starts (a restore takes ~0.5 s,
// the proxy's own start ~0.15 s): it serves once the VM is recorded. A create
// that fails or dies removes the sandbox, and the proxy ends with it.
async function vmRecorded(ctx: Context, sandboxId: string): Promise<SandboxDoc> {
  const deadline = Date.now() + VM_WAIT_MS;
  for (;;) {
    const doc = ctx.store.load(sandboxId); // a sandbox that is gone ends the proxy with its error
    if (doc.vm) return doc;
    if (doc.state !== "creating" || Date.now() > deadline)
      throw new HuskError(`sandbox ${sandboxId} has no VM${doc.state === "creating" ? ` after ${VM_WAIT_MS} ms` : ""}`);
    await Bun.sleep(10);
  }
}

// Each relayed shim's life, as `husk shim` would live it by itself.
async function relayShim(ctx: Context, s: RelaySession, sessions: Map<RelaySession, Promise<void>>): Promise<void> {
  const { sandboxId, containerId, execId, tty } = s.hello;
  try {
    s.exit(await runShim(ctx, { sandboxId, containerId, execId }, s.io, { tty }));
  } catch (e) {
    log.warn(`proxy: relaying ${execId ? `exec ${execId}` : `container ${containerId}`}: ${errorMessage(e)}`);
    s.refuse(errorMessage(e));
  } finally {
    sessions.delete(s);
  }
}

// Stopped while its VM lives, the proxy hands each shim back to itself. With
// the VM gone, its containers died: a sandbox being deleted (which holds the
// lock the exit records need) gets "killed" at once, one whose VM died by
// itself gets its exits recorded first.
type End = "stopped" | "deleted" | "vm-died";

async function settle(relay: RelayServer, sessions: Map<RelaySession, Promise<void>>, end: End): Promise<void> {
  if (end === "vm-died") await Promise.race([Promise.all(sessions.values()), Bun.sleep(SETTLE_MS)]);
  if (end !== "stopped") for (const s of sessions.keys()) s.exit(KILLED);
  relay.close();
}
