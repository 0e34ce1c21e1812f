import { HuskError } from "../core/index.ts";
import { withAgent } from "./agent.ts";
import type { Context } from "./context.ts";
import { findContainer, liveStatus } from "./find.ts";

export async function killContainer(ctx: Context, id: string, signal: number, all: boolean): Promise<void> {
  const { sandbox, container } = findContainer(ctx, id);
  const status = liveStatus(container);
  if (status === "stopped" && !all) throw new HuskError(`container ${id} is not running`);
  if (status === "stopped") return;
  await withAgent(ctx, sandbox, (a) => a.rpc.signalProcess({ containerId: id, execId: "", signal, all }));
}
