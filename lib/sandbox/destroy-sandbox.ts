import { crashPoint, errorMessage, log } from "../core/index.ts";
import { stopStrays } from "../hypervisor/index.ts";
import { releaseNetwork } from "../network/index.ts";
import { removeCgroup } from "../cgroups/index.ts";
import { DOC_FILE, LOCK_FILE, type SandboxDoc } from "../persist/index.ts";
import { driverOfDoc, withAgent } from "./agent.ts";
import { vmAlive } from "./vm.ts";
import type { Context } from "./context.ts";
import { removeTree } from "./mounts.ts";
import { unshareAll } from "./rootfs.ts";
import { stopProxy } from "./proxy.ts";
import { removeSocketDirAlias } from "./paths.ts";

const TEARDOWN_TIMEOUT_MS = 10_000;

// Tears a sandbox down: agent teardown (best effort), VM or agent process,
// shared mounts, its directory and its document. Every step tolerates what an
// earlier crash or an older release already removed, so it can run again.
// With onlyDebris, only a directory without a document is removed (what a
// create that died inside its first save leaves).
export async function destroySandbox(ctx: Context, id: string, opts: { force: boolean; onlyDebris?: boolean }): Promise<void> {
  const lock = await ctx.store.lock(id);
  try {
    const doc = ctx.store.tryLoad(id);
    if (doc && opts.onlyDebris) return;
    if (doc) await stopEverything(ctx, doc, opts.force);
    // Helpers spawned but not yet recorded when a create died.
    await stopStrays(ctx.store.sandboxDir(id));
    crashPoint("destroy:stopped");
    // Never recurse into a bind mount: that would delete the host's files.
    // The document and the lock go last: a crash mid-way leaves a sandbox
    // that gc and delete --force still find.
    unshareAll(ctx.store.sandboxDir(id));
    crashPoint("destroy:unmounted");
    removeTree(ctx.store.sandboxDir(id), { keep: [DOC_FILE, LOCK_FILE] });
    crashPoint("destroy:removed");
    removeSocketDirAlias(ctx, id);
    ctx.store.delete(id, doc?.containers.map((c) => c.id));
  } finally {
    lock.release();
  }
}

async function stopEverything(ctx: Context, doc: SandboxDoc, force: boolean): Promise<void> {
  const driver = doc.vm && (await driverOfDoc(ctx, doc));
  // A VM whose VMM or virtiofsd died has no agent left to ask.
  if (driver && doc.agent && vmAlive(driver, doc.vm!)) {
    await withAgent(ctx, doc, async (a) => {
      if (a.has("sandbox")) await a.rpc.teardownSandbox({ sandboxId: doc.id, force });
    }, { timeoutMs: TEARDOWN_TIMEOUT_MS, locked: true }).catch((e) => log.warn(`sandbox ${doc.id}: agent teardown skipped: ${errorMessage(e)}`));
  }
  if (driver) await driver.stop(doc.vm!);
  await stopProxy(doc);
  releaseNetwork(doc.network);
  const left = doc.hostCgroup ? await removeCgroup(doc.hostCgroup) : [];
  if (left.length) log.warn(`sandbox ${doc.id}: host cgroup still in use, left in place: ${left.join(", ")}`);
}
