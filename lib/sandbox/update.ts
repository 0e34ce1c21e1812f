import { ErrorCode, HuskError, parseSize } from "../core/index.ts";
import { checkOperation } from "../oci/index.ts";
import { withAgent } from "./agent.ts";
import type { Context } from "./context.ts";
import { findContainer, liveStatus } from "./find.ts";

// runc's single-value flags, as `husk update` takes them (-r FILE replaces them all).
export interface UpdateFlags {
  memory?: string;
  memorySwap?: string;
  memoryReservation?: string;
  cpuQuota?: string;
  cpuPeriod?: string;
  cpuShares?: string;
  cpusetCpus?: string;
  cpusetMems?: string;
  pidsLimit?: string;
}

const invalid = (msg: string) => new HuskError(msg, { code: ErrorCode.InvalidArgument });

// Sizes as runc reads them: 64m, 1g, 512k, bytes; -1 = unlimited.
function parseBytes(flag: string, value: string, allowUnlimited = false): number {
  if (allowUnlimited && value === "-1") return -1;
  const n = parseSize(value);
  if (n === undefined) throw invalid(`update --${flag}: ${JSON.stringify(value)} is not a size such as 64m or 1g${allowUnlimited ? " (or -1)" : ""}`);
  return n;
}

function parseInteger(flag: string, value: string, min: number): number {
  if (!/^-?\d+$/.test(value.trim()) || Number(value) < min)
    throw invalid(`update --${flag}: ${JSON.stringify(value)} is not an integer${min > 0 ? ` of at least ${min}` : min === 0 ? " >= 0" : ""}`);
  return Number(value);
}

// linux.resources from runc's flags; only what was given is set.
export function resourcesFromFlags(f: UpdateFlags): Record<string, unknown> {
  const memory: Record<string, number> = {};
  if (f.memory !== undefined) memory.limit = parseBytes("memory", f.memory, true);
  if (f.memorySwap !== undefined) memory.swap = parseBytes("memory-swap", f.memorySwap, true);
  if (f.memoryReservation !== undefined) memory.reservation = parseBytes("memory-reservation", f.memoryReservation, true);
  const cpu: Record<string, number | string> = {};
  if (f.cpuQuota !== undefined) cpu.quota = parseInteger("cpu-quota", f.cpuQuota, -1);
  if (f.cpuPeriod !== undefined) cpu.period = parseInteger("cpu-period", f.cpuPeriod, 1);
  if (f.cpuShares !== undefined) cpu.shares = parseInteger("cpu-shares", f.cpuShares, 2);
  if (f.cpusetCpus !== undefined) cpu.cpus = f.cpusetCpus;
  if (f.cpusetMems !== undefined) cpu.mems = f.cpusetMems;
  const r: Record<string, unknown> = {};
  if (Object.keys(memory).length) r.memory = memory;
  if (Object.keys(cpu).length) r.cpu = cpu;
  if (f.pidsLimit !== undefined) r.pids = { limit: parseInteger("pids-limit", f.pidsLimit, -1) };
  return r;
}

// `husk update`: new limits for a live container, applied by the agent (in
// the guest for a VM) through runc update. An agent without the "update"
// capability is refused before the call, by name.
export async function updateContainer(ctx: Context, id: string, resources: unknown): Promise<void> {
  if (typeof resources !== "object" || resources === null || Array.isArray(resources))
    throw invalid("update: resources must be a JSON object (linux.resources of the runtime spec)");
  if (!Object.keys(resources).length) throw invalid("update: no resources given (use -r FILE or flags such as --memory)");
  const { sandbox, container } = findContainer(ctx, id);
  checkOperation(id, await liveStatus(ctx, sandbox, container), "update");
  await withAgent(ctx, sandbox, (a) => a.rpc.updateContainer({ containerId: id, resourcesJson: JSON.stringify(resources) }));
}
