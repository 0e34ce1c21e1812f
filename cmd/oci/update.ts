import { defineCommand } from "citty";
import { HuskError, errorMessage, readBounded } from "../../lib/core/index.ts";
import { LIMITS } from "../../lib/oci/index.ts";
import { resourcesFromFlags, updateContainer, type UpdateFlags } from "../../lib/sandbox/update.ts";
import { context, idArg } from "./context.ts";

function readResources(path: string): unknown {
  try {
    // linux.resources is part of a config.json: the same bound holds.
    return JSON.parse(readBounded(path === "-" ? 0 : path, LIMITS.configBytes));
  } catch (e) {
    throw new HuskError(`update --resources ${path}: ${errorMessage(e)}`);
  }
}

const value = (description: string) => ({ type: "string" as const, description });

// runc's flags: -r FILE (or - for stdin) with linux.resources as JSON, or
// single values; as with runc, -r replaces the flags.
const FLAGS = {
  memory: value("memory limit (e.g. 64m, 1g; -1 = unlimited)"),
  "memory-swap": value("memory plus swap limit (-1 = unlimited)"),
  "memory-reservation": value("memory soft limit"),
  "cpu-quota": value("CPU time per period, in microseconds (-1 = unlimited)"),
  "cpu-period": value("CPU period, in microseconds"),
  "cpu-share": value("CPU shares (relative weight)"),
  "cpu-shares": value("CPU shares (relative weight)"),
  "cpuset-cpus": value("CPUs the container may use (e.g. 0-1,3)"),
  "cpuset-mems": value("memory nodes the container may use"),
  "pids-limit": value("maximum number of processes (-1 = unlimited)"),
};

export default defineCommand({
  meta: { name: "update", description: "Update a container's resource limits" },
  args: {
    id: idArg,
    resources: { type: "string", alias: "r", description: "JSON file with linux resources, or - for stdin" },
    ...FLAGS,
  },
  async run({ args }) {
    const a = args as Record<string, string | undefined>;
    const flags: UpdateFlags = {
      memory: a.memory, memorySwap: a["memory-swap"], memoryReservation: a["memory-reservation"],
      cpuQuota: a["cpu-quota"], cpuPeriod: a["cpu-period"], cpuShares: a["cpu-shares"] ?? a["cpu-share"],
      cpusetCpus: a["cpuset-cpus"], cpusetMems: a["cpuset-mems"], pidsLimit: a["pids-limit"],
    };
    const resources = args.resources ? readResources(args.resources) : resourcesFromFlags(flags);
    await updateContainer(await context(), args.id, resources);
  },
});
