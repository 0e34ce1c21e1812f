import { rmSync } from "node:fs";
import { errorMessage, log } from "../core/index.ts";
import { driverFor, type DriverName, type VmState } from "../hypervisor/index.ts";
import type { SandboxDoc } from "../persist/index.ts";
import { withAgent } from "./agent.ts";
import type { Context } from "./context.ts";
import { unshareAll } from "./rootfs.ts";
import { stopProxy } from "./proxy.ts";
import { removeSocketDirAlias } from "./paths.ts";

// Tears a sandbox down: agent teardown (best effort), VM or agent process,
// shared mounts, its directory and its document. Every step tolerates what an
// earlier crash or an older release already removed, so it can run again.
export async function destroySandbox(ctx: Context, id: string, opts: { force: boolean }): Promise<void> {
  const lock = await ctx.store.lock(id);
  try {
    const doc = ctx.store.tryLoad(id);
    if (doc) await stopEverything(ctx, doc, opts.force);
    // Never recurse into a bind mount: that would delete the host's files.
    unshareAll(ctx.store.sandboxDir(id));
    rmSync(ctx.store.sandboxDir(id), { recursive: true, force: true });
    removeSocketDirAlias(ctx, id);
    ctx.store.delete(id);
  } finally {
    lock.release();
  }
}

async function stopEverything(ctx: Context, doc: SandboxDoc, force: boolean): Promise<void> {
  if (doc.hypervisor && doc.agent) {
    await withAgent(ctx, doc, async (a) => {
      if (a.has("sandbox")) await a.rpc.teardownSandbox({ sandboxId: doc.id, force }, { timeoutMs: 10_000 });
    }).catch((e) => log.warn(`sandbox ${doc.id}: agent teardown skipped: ${errorMessage(e)}`));
  }
  if (doc.hypervisor) {
    const vm = doc.hypervisor as VmState;
    const driver = await driverFor(vm.driver as DriverName, ctx.settings);
    await driver.stop(vm);
  }
  await stopProxy(doc);
}
