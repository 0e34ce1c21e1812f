import { HuskError } from "../core/index.ts";
import { withAgent } from "./agent.ts";
import type { Context } from "./context.ts";
import { findContainer, liveStatus } from "./find.ts";

export interface ProcessEntry {
  pid: number;
  ppid: number;
  args: string[];
}

export async function listProcesses(ctx: Context, id: string): Promise<ProcessEntry[]> {
  const { sandbox, container } = findContainer(ctx, id);
  const status = liveStatus(container);
  if (status === "stopped") throw new HuskError(`container ${id} is not running`);
  const r = await withAgent(ctx, sandbox, (a) => a.rpc.listProcesses({ containerId: id }));
  return r.processes.map((p) => ({ pid: p.pid, ppid: p.ppid, args: p.args }));
}
