import { readFileSync } from "node:fs";

// Start time (clock ticks since boot) from /proc/<pid>/stat; with the pid it
// names a process uniquely, so a recycled pid is never mistaken for ours.
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number | undefined, startTime?: number): boolean {
  if (!pid || pid <= 0) return false;
  const st = processStartTime(pid);
  if (st === undefined) return false;
  if (isZombie(pid)) return false;
  return startTime === undefined || st === startTime;
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) === "Z";
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// SIGTERM, then SIGKILL after graceMs; true once the process is gone.
// Never init or this process, whatever a (corrupt) record says.
export async function terminate(pid: number, startTime?: number, graceMs = 5000): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid) return false;
  if (!isAlive(pid, startTime)) return true;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {}
  };
  signal("SIGTERM");
  for (let waited = 0; waited < graceMs; waited += 20) {
    if (!isAlive(pid, startTime)) return true;
    await sleep(20);
  }
  signal("SIGKILL");
  for (let waited = 0; waited < 2000; waited += 20) {
    if (!isAlive(pid, startTime)) return true;
    await sleep(20);
  }
  return !isAlive(pid, startTime);
}
