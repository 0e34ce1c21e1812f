import { isAlive } from "../core/index.ts";
import { checkOperation } from "../oci/index.ts";
import type { ContainerDoc } from "../persist/index.ts";
import { withAgent } from "./agent.ts";
import type { Context } from "./context.ts";
import { findContainer, liveStatus } from "./find.ts";

export interface ProcessEntry {
  pid?: number; // the host pid published for it: init's shim, or an exec's --pid-file
  sandboxPid: number; // as the agent sees it (the guest's pid in a VM)
  ppid: number;
  args: string[];
  execId?: string;
}

// The pids published for a container's processes, as runc's users know
// them: init's (the shim's, from --pid-file of create) first, then those
// `exec --pid-file` published whose process still runs.
export function publishedPids(c: ContainerDoc): number[] {
  const init = initShim(c);
  return [...(init ? [init] : []), ...liveExecs(c).values()];
}

const initShim = (c: ContainerDoc) => (c.pid && isAlive(c.pid, c.pidStartTime) ? c.pid : undefined);

// exec id -> published pid, for the execs whose process still runs.
const liveExecs = (c: ContainerDoc) =>
  new Map((c.execs ?? []).filter((e) => isAlive(e.process.pid, e.process.startTime)).map((e) => [e.id, e.process.pid]));

// `ps --format json`: the published pids (no agent call).
export async function publishedProcesses(ctx: Context, id: string): Promise<number[]> {
  const { sandbox, container } = findContainer(ctx, id);
  checkOperation(id, await liveStatus(ctx, sandbox, container), "ps");
  return publishedPids(container);
}

// Every process of the container as the agent lists it, with the published
// host pid of init and of each exec that has one.
export async function listProcesses(ctx: Context, id: string): Promise<ProcessEntry[]> {
  const { sandbox, container } = findContainer(ctx, id);
  checkOperation(id, await liveStatus(ctx, sandbox, container), "ps");
  let { processes, initPid } = await withAgent(ctx, sandbox, async (a) => ({
    processes: (await a.rpc.listProcesses({ containerId: id })).processes,
    initPid: a.has("container-state") ? (await a.rpc.getContainerState({ containerId: id })).pid : undefined,
  }));
  // An agent without GetContainerState (0.1.0): init is the first process
  // whose parent is outside the container (an exec's is too, but it comes later).
  const inside = new Set(processes.map((p) => p.pid));
  initPid ??= processes.filter((p) => !p.execId && !inside.has(p.ppid)).sort((a, b) => a.pid - b.pid)[0]?.pid;
  const execs = liveExecs(container);
  const published = (p: { pid: number; execId: string }) =>
    p.execId ? execs.get(p.execId) : p.pid === initPid ? initShim(container) : undefined;
  return processes.map((p) => ({
    pid: published(p),
    sandboxPid: p.pid,
    ppid: p.ppid,
    args: p.args,
    execId: p.execId || undefined,
  }));
}
