import { checkOperation } from "../oci/index.ts";
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
  checkOperation(id, await liveStatus(ctx, sandbox, container), "ps");
  const r = await withAgent(ctx, sandbox, (a) => a.rpc.listProcesses({ containerId: id }));
  return r.processes.map((p) => ({ pid: p.pid, ppid: p.ppid, args: p.args }));
}
