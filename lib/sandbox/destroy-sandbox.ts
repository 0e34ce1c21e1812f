import { rmSync } from "node:fs";
import { errorMessage, log } from "../core/index.ts";
import { releaseNetwork } from "../network/index.ts";
import type { SandboxDoc } from "../persist/index.ts";
import { driverOfDoc, withAgent } from "./agent.ts";
import type { Context } from "./context.ts";
import { unshareAll } from "./rootfs.ts";
import { stopProxy } from "./proxy.ts";
import { removeSocketDirAlias } from "./paths.ts";

const TEARDOWN_TIMEOUT_MS = 10_000;

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
    ctx.store.delete(id, doc?.containers.map((c) => c.id));
  } finally {
    lock.release();
  }
}

async function stopEverything(ctx: Context, doc: SandboxDoc, force: boolean): Promise<void> {
  if (doc.vm && doc.agent) {
    await withAgent(ctx, doc, async (a) => {
      if (a.has("sandbox")) await a.rpc.teardownSandbox({ sandboxId: doc.id, force });
    }, { timeoutMs: TEARDOWN_TIMEOUT_MS }).catch((e) => log.warn(`sandbox ${doc.id}: agent teardown skipped: ${errorMessage(e)}`));
  }
  if (doc.vm) await (await driverOfDoc(ctx, doc)).stop(doc.vm);
  await stopProxy(doc);
  releaseNetwork(doc.network);
}
