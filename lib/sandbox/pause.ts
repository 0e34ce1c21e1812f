import { checkOperation } from "../oci/index.ts";
import { LOCKED_CALL_MS, withAgent } from "./agent.ts";
import type { Context } from "./context.ts";
import { containerIn, findContainer, liveStatus } from "./find.ts";

async function setPaused(ctx: Context, id: string, pause: boolean): Promise<void> {
  const { sandbox } = findContainer(ctx, id);
  await ctx.store.update(sandbox.id, async (doc) => {
    const c = containerIn(doc, id);
    checkOperation(id, await liveStatus(ctx, doc, c), pause ? "pause" : "resume");
    await withAgent(ctx, doc, async (a) => {
      if (pause) await a.rpc.pauseContainer({ containerId: id });
      else await a.rpc.resumeContainer({ containerId: id });
    }, { timeoutMs: LOCKED_CALL_MS, locked: true, what: `${pause ? "pause" : "resume"} ${id}` });
    c.state = pause ? "paused" : "running";
  });
}

export const pauseContainer = (ctx: Context, id: string) => setPaused(ctx, id, true);
export const resumeContainer = (ctx: Context, id: string) => setPaused(ctx, id, false);
