import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { HuskError } from "./errors.ts";
import { isAlive } from "./proc.ts";
import { selfCommand } from "./self.ts";

// Long-lived helper processes (the local agent, a VM's agent proxy): this same
// husk, detached in its own session, output to a log, serving a unix socket.

function logTail(path: string): string {
  try {
    return readFileSync(path, "utf8").trim().split("\n").slice(-5).join("\n");
  } catch {
    return "";
  }
}

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

export interface DaemonSpec {
  args: string[]; // husk arguments
  logPath: string;
  socket: string; // ready once this accepts connections
  what: string; // for messages: "agent", "agent proxy"
  timeoutMs?: number;
}

export async function startDaemon(d: DaemonSpec): Promise<number> {
  const log = openSync(d.logPath, "a");
  const [cmd, ...pre] = selfCommand();
  const child = spawn(cmd!, [...pre, ...d.args], { detached: true, stdio: ["ignore", log, log] });
  closeSync(log);
  child.unref();
  const pid = child.pid;
  if (!pid) throw new HuskError(`cannot start the ${d.what} (${cmd})`);
  const deadline = Date.now() + (d.timeoutMs ?? 10_000);
  while (Date.now() < deadline) {
    if (!isAlive(pid)) throw new HuskError(`the ${d.what} exited during start-up: ${logTail(d.logPath) || "no output"}`);
    if (await canConnect(d.socket)) return pid;
    await Bun.sleep(10);
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch {}
  throw new HuskError(`the ${d.what} did not listen on ${d.socket} within ${d.timeoutMs ?? 10_000} ms: ${logTail(d.logPath)}`);
}
