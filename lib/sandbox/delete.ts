import { existsSync } from "node:fs";
import { ErrorCode, HuskError, errnoOf, errorCode, errorMessage, log, terminate } from "../core/index.ts";
import { checkOperation } from "../oci/index.ts";
import { PersistError, type ContainerDoc } from "../persist/index.ts";
import type { AgentClient } from "../protocol/index.ts";
import { LOCKED_CALL_MS, withAgent } from "./agent.ts";
import type { Context } from "./context.ts";
import { destroySandbox } from "./destroy-sandbox.ts";
import { containerIn, liveStatus } from "./find.ts";
import { runHostHooks } from "./hooks.ts";
import { unshareContainer } from "./rootfs.ts";
import { vmLost } from "./vm.ts";


const isDiskFull = (e: unknown) => errnoOf(e) === "ENOSPC" || errnoOf(e) === "EDQUOT";

// `husk delete`: removes the container from its sandbox; the last container
// out takes the sandbox (VM, agent, directory) with it. --force also kills a
// live container and cleans up after a half-created sandbox.
export async function deleteContainer(ctx: Context, id: string, force: boolean): Promise<void> {
  let found;
  try {
    found = ctx.store.findContainer(id);
  } catch (e) {
    if (!force) throw e;
    log.warn(`delete --force ${id}: ${errorMessage(e)}`);
  }
  if (!found) {
    if (!force) throw new HuskError(`container ${id} does not exist`, { code: ErrorCode.NotFound });
    // A sandbox named after the container but without it, or a directory
    // without a document: a create that crashed.
    if (ctx.store.list().includes(id)) await destroySandbox(ctx, id, { force: true });
    else if (existsSync(ctx.store.sandboxDir(id))) await destroySandbox(ctx, id, { force: true, onlyDebris: true });
    return;
  }
  const sandboxId = found.sandbox.id;
  let last = false;
  let shim: { pid: number; start?: number } | undefined;
  let poststop: ContainerDoc | undefined;
  await ctx.store.update(sandboxId, async (doc) => {
    const c = containerIn(doc, id);
    poststop = c;
    checkOperation(id, await liveStatus(ctx, doc, c), "delete", { force });
    // The last container out with --force: the sandbox's teardown removes it
    // with the rest (one bounded call, then the VM goes whether it answers or not).
    const remove = (a: AgentClient) => a.rpc.removeContainer({ containerId: id, force: true });
    if (!(force && doc.containers.length === 1) && !(await vmLost(ctx, doc)))
      await withAgent(ctx, doc, remove, { timeoutMs: LOCKED_CALL_MS, locked: true, what: `delete ${id}` }).catch((e) => {
        // An agent that does not know the container started after it died
        // (the guest restarts a dead agent): there is nothing to remove.
        if (errorCode(e) === ErrorCode.NotFound) return log.info(`delete ${id}: the agent no longer has it; removing the record`);
        if (!force) throw e;
        log.warn(`delete --force ${id}: agent: ${errorMessage(e)}`);
      });
    if (c.pid) shim = { pid: c.pid, start: c.pidStartTime };
    unshareContainer(doc, id);
    doc.containers = doc.containers.filter((x) => x.id !== id);
    last = doc.containers.length === 0;
  }).catch((e) => {
    if (e instanceof PersistError && e.reason === "not-found") return;
    // Removing needs no new bytes on disk: a full disk skips the record of
    // this step (the teardown that follows, or the next delete, removes it).
    if (!isDiskFull(e)) throw e;
    log.notice(`delete ${id}: ${errorMessage(e)}; the document was not updated, removal goes on`);
  });
  // The shim records the exit and leaves by itself once the lock is free.
  if (shim) await terminate(shim.pid, shim.start, 1000);
  if (last) await destroySandbox(ctx, sandboxId, { force });
  if (poststop) await runHostHooks(poststop, "poststop", "stopped");
}
