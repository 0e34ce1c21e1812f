import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { HuskError, isAlive, processStartTime } from "../../core/index.ts";
import { findExecutable } from "../select.ts";

// Helper processes (the VMM, virtiofsd) outlive the husk command that starts
// them: detached, output to a log file in the VM directory.

export interface Spawned {
  pid: number;
  startTime?: number; // with the pid, names the process even after pid reuse
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// `setting` names where the user can change the path, for the error message.
export function requireExecutable(path: string, what: string, setting: string): string {
  const found = findExecutable(path);
  if (!found) throw new HuskError(`${what} not found at '${path}': install it or set ${setting}`);
  return found;
}

export function spawnDetached(cmd: string, args: string[], logPath: string): Spawned {
  const log = openSync(logPath, "a");
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ["ignore", log, log] });
    child.on("error", () => {}); // reported through the missing pid below or the log
    child.unref();
    if (!child.pid) throw new HuskError(`cannot start ${cmd}`);
    return { pid: child.pid, startTime: processStartTime(child.pid) };
  } finally {
    closeSync(log);
  }
}

export function logTail(path: string, lines = 5): string {
  try {
    return readFileSync(path, "utf8").trim().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

// Polls `ready` until it holds, the process dies, or the time is up.
export async function waitUntil(
  ready: () => Promise<boolean> | boolean,
  proc: Spawned,
  what: string,
  logPath: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    if (await ready()) return;
    if (!isAlive(proc.pid, proc.startTime))
      throw new HuskError(`${what} exited during start-up: ${logTail(logPath) || "no output"} (log: ${logPath})`);
    if (Date.now() >= deadline)
      throw new HuskError(`${what} not ready within ${timeoutMs} ms: ${logTail(logPath) || "no output"} (log: ${logPath})`);
    await sleep(delay);
  }
}

export const socketExists = (path: string) => () => existsSync(path);
