import { checkOperation, nextStatus } from "../oci/index.ts";
import { withAgent } from "./agent.ts";
import type { Context } from "./context.ts";
import { containerIn, findContainer, liveStatus } from "./find.ts";
import { runHostHooks } from "./hooks.ts";

export async function startContainer(ctx: Context, id: string): Promise<void> {
  const { sandbox, container } = findContainer(ctx, id);
  checkOperation(id, await liveStatus(ctx, sandbox, container), "start");
  // Outside the lock: the agent refuses a second start itself.
  await withAgent(ctx, sandbox, (a) => a.rpc.startContainer({ containerId: id }));
  const doc = await ctx.store.update(sandbox.id, (doc) => {
    const c = containerIn(doc, id);
    c.state = nextStatus(c.state, "running"); // it may have exited already
    c.startedAt = new Date().toISOString();
  });
  await runHostHooks(containerIn(doc, id), "poststart", "running");
}
