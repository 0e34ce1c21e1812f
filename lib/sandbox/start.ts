import { HuskError } from "../core/index.ts";
import { withAgent } from "./agent.ts";
import type { Context } from "./context.ts";
import { containerIn, findContainer, liveStatus } from "./find.ts";

export async function startContainer(ctx: Context, id: string): Promise<void> {
  const { sandbox } = findContainer(ctx, id);
  await ctx.store.update(sandbox.id, async (doc) => {
    const c = containerIn(doc, id);
    const status = liveStatus(c);
    if (status !== "created") throw new HuskError(`cannot start a container that is ${status}: ${id}`);
    await withAgent(ctx, doc, (a) => a.rpc.startContainer({ containerId: id }));
    c.state = "running";
    c.startedAt = new Date().toISOString();
  });
}
