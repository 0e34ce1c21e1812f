import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect } from "node:net";
import { HuskError, isAlive, processStartTime, residentEnv, selfCommand, terminate } from "../core/index.ts";
import type { ProcessRef } from "../persist/index.ts";
import { findExecutable } from "./select.ts";

// Helper processes of a sandbox (VMM, virtiofsd, the local agent, the agent
// proxy) outlive the husk command that starts them: detached in a session of
// their own, output to a log file, found again by pid + start time.

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// `setting` names where the user can change the path, for the error message.
export function requireExecutable(path: string, what: string, setting: string): string {
  const found = findExecutable(path);
  if (!found) throw new HuskError(`${what} not found at '${path}': install it or set ${setting}`);
  return found;
}

export interface SpawnOptions {
  env?: Record<string, string | undefined>;
  fds?: number[]; // open in the child as 3, 4, ...
}

export function spawnDetached(cmd: string, args: string[], logPath: string, opts: SpawnOptions = {}): ProcessRef {
  const log = openSync(logPath, "a");
  try {
    const child = spawn(cmd, args, { detached: true, stdio: ["ignore", log, log, ...(opts.fds ?? [])], env: opts.env ?? process.env });
    child.on("error", () => {}); // reported through the missing pid below or the log
    child.on("exit", () => {}); // reaped while we run, so no zombie outlives stop()
    child.unref();
    if (!child.pid) throw new HuskError(`cannot start ${cmd}`);
    const startTime = processStartTime(child.pid);
    const ref = { pid: child.pid, ...(startTime !== undefined ? { startTime } : {}) };
    notePid(logPath, ref);
    return ref;
  } finally {
    closeSync(log);
  }
}

// Beside its log, each helper leaves <name>.pid ("pid startTime") the moment
// it is spawned: a command that dies before it records the process in the
// sandbox's document leaves a trace teardown still finds (stopStrays).
const PID_SUFFIX = ".pid";
const pidFileOf = (logPath: string) => logPath.replace(/\.log$/, "") + PID_SUFFIX;

function notePid(logPath: string, p: ProcessRef): void {
  try {
    writeFileSync(pidFileOf(logPath), `${p.pid} ${p.startTime ?? ""}\n`);
  } catch {} // a full disk: the document still records the process
}

// Stops every helper spawned for dir that still runs, recorded or not.
export async function stopStrays(dir: string, graceMs = 2000): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names.filter((n) => n.endsWith(PID_SUFFIX))) {
    let ref: ProcessRef | undefined;
    try {
      const [pid, start] = readFileSync(join(dir, name), "utf8").trim().split(" ");
      ref = { pid: Number(pid), ...(start ? { startTime: Number(start) } : {}) };
    } catch {
      continue;
    }
    // Without a start time the pid may have been reused: leave it.
    if (ref.pid > 1 && ref.startTime !== undefined && running(ref)) await terminate(ref.pid, ref.startTime, graceMs);
  }
}

export function logTail(path: string, lines = 5): string {
  try {
    return readFileSync(path, "utf8").trim().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

export const running = (p: ProcessRef | undefined): boolean => !!p && isAlive(p.pid, p.startTime);

// Polls `ready` until it holds, the process dies, or the time is up.
export async function waitUntil(
  ready: () => Promise<boolean> | boolean,
  proc: ProcessRef,
  what: string,
  logPath: string,
  timeoutMs: number,
  maxDelayMs = 100, // between checks, once they have backed off
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, maxDelayMs)) {
    if (await ready()) return;
    if (!running(proc)) throw new HuskError(`${what} exited during start-up: ${logTail(logPath) || "no output"} (log: ${logPath})`);
    if (Date.now() >= deadline)
      throw new HuskError(`${what} not ready within ${timeoutMs} ms: ${logTail(logPath) || "no output"} (log: ${logPath})`);
    await sleep(delay);
  }
}

export const isDirectory = (path: string): boolean => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

export const socketExists = (path: string) => () => existsSync(path);

export function canConnect(path: string, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(path);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once("connect", () => done(true));
    sock.once("error", () => done(false));
  });
}

async function exited(p: ProcessRef, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 20) {
    if (!running(p)) return true;
    await sleep(20);
  }
  return false;
}

// Idempotent stop: the polite way first (a QMP quit, an API shutdown), given
// graceMs to work; then SIGTERM and SIGKILL. A process already gone is fine.
export async function stopProcess(p: ProcessRef | undefined, polite?: () => Promise<unknown>, graceMs = 3000): Promise<void> {
  if (!running(p)) return;
  if (polite) {
    await polite().catch(() => {});
    if (await exited(p!, graceMs)) return;
  }
  await terminate(p!.pid, p!.startTime, graceMs);
}

export interface DaemonSpec {
  args: string[]; // husk arguments
  logPath: string;
  socket: string; // ready once this accepts connections
  what: string; // for messages: "agent", "agent proxy"
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

// This same husk as a long-lived helper serving a unix socket.
export async function startDaemon(d: DaemonSpec): Promise<ProcessRef> {
  const { process, ready } = launchDaemon(d);
  await ready;
  return process;
}

// The same, returned at once: ready settles when it serves (or has been
// stopped for not serving in time).
export function launchDaemon(d: DaemonSpec): { process: ProcessRef; ready: Promise<void> } {
  const [cmd, ...pre] = selfCommand();
  const proc = spawnDetached(cmd!, [...pre, ...d.args], d.logPath, { env: d.env ?? residentEnv() });
  const timeoutMs = d.timeoutMs ?? 10_000;
  // A connect attempt is cheap, and a proxy started with its VM is waited
  // for while the VM restores: checked finely, it is used the moment it serves.
  const ready = waitUntil(() => canConnect(d.socket), proc, `the ${d.what}`, d.logPath, timeoutMs, 10).catch(async (e) => {
    await terminate(proc.pid, proc.startTime, 0);
    throw e;
  });
  return { process: proc, ready };
}
