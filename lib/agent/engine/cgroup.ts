import { existsSync, readFileSync } from "node:fs";
import type { ContainerStats } from "./types.ts";

// Statistics straight from the container's cgroup, found through its init's
// /proc/<pid>/cgroup: for runtimes without `events --stats` (crun) and as a
// fallback when the runtime's answer cannot be had. cgroup v1, hybrid and v2.

const ROOT = "/sys/fs/cgroup";

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
}

const num = (s: string | undefined): number | undefined => (s === undefined || s === "" ? undefined : Number(s));

// controller -> directory of the process's cgroup for it ("" for the v2 unified tree)
function cgroupDirs(pid: number): Map<string, string> {
  const dirs = new Map<string, string>();
  for (const line of (read(`/proc/${pid}/cgroup`) ?? "").split("\n")) {
    const [hier, controllers, path] = line.split(":");
    if (path === undefined) continue;
    if (hier === "0" && controllers === "") {
      const unified = existsSync(`${ROOT}/unified`) ? `${ROOT}/unified` : ROOT;
      dirs.set("", `${unified}${path}`);
    } else {
      for (const c of controllers!.split(",")) dirs.set(c, `${ROOT}/${controllers}${path}`);
    }
  }
  return dirs;
}

function v2Usage(dir: string): number | undefined {
  const line = read(`${dir}/cpu.stat`)?.split("\n").find((l) => l.startsWith("usage_usec "));
  return line ? Number(line.split(" ")[1]) * 1000 : undefined;
}

export function cgroupStats(pid: number): ContainerStats | undefined {
  const dirs = cgroupDirs(pid);
  const v2 = dirs.get("");
  const cpu = dirs.has("cpuacct") ? num(read(`${dirs.get("cpuacct")}/cpuacct.usage`)) : v2 ? v2Usage(v2) : undefined;
  const memory = dirs.has("memory")
    ? num(read(`${dirs.get("memory")}/memory.usage_in_bytes`))
    : v2 ? num(read(`${v2}/memory.current`)) : undefined;
  const pids = num(read(`${dirs.get("pids") ?? v2}/pids.current`));
  if (cpu === undefined && memory === undefined) return undefined;
  return { cpuUsageNs: cpu ?? 0, memoryBytes: memory ?? 0, pids: pids ?? 0 };
}
