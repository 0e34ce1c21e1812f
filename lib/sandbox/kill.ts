import { checkOperation } from "../oci/index.ts";
import { withAgent } from "./agent.ts";
import type { Context } from "./context.ts";
import { findContainer, liveStatus } from "./find.ts";

// The agent decides whether the container is alive, not the host shim: a
// container whose shim died can still be signalled.
export async function killContainer(ctx: Context, id: string, signal: number, all: boolean): Promise<void> {
  const { sandbox, container } = findContainer(ctx, id);
  const status = await liveStatus(ctx, sandbox, container);
  checkOperation(id, status, "kill", { all });
  if (status === "stopped") return; // --all of a stopped container: nothing left to signal
  await withAgent(ctx, sandbox, (a) => a.rpc.signalProcess({ containerId: id, execId: "", signal, all }));
}
