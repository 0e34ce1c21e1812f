import { readFileSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { ErrorCode, HuskError, errorMessage } from "../../core/index.ts";
import { dialectOf, type Dialect } from "./crun.ts";

// The OCI runtime binary (runc; crun speaks the same CLI). Every call uses a
// private --root so the host's own runc state is never seen or touched, and a
// private --log so errors come back as runc's own message.

type Fd = number | "ignore";

// A container's init is still the runtime's code (waiting to start, running
// startContainer hooks) while its comm is runc's "runc:[2:INIT]" or crun's
// re-executed copy of itself ("memfd:crun_cloned"); afterwards it is the process.
export function isRuntimeInit(comm: string): boolean {
  return comm.startsWith("runc:") || comm.startsWith("memfd:crun") || comm === "crun";
}

// How each runtime words a startContainer hook that failed.
export const HOOK_FAILED = /error running hook|error executing hook/;

export interface RuncCall {
  stdio?: [Fd, Fd, Fd]; // pass-through stdio for create/exec; default captures stdout
  timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;

// Every runc call is short-lived (exec is --detach), but each costs ~20 MiB
// while it runs: a burst of 64 execs at once would run a 256 MiB guest out of
// memory. Calls past the limit wait their turn instead.
const RUNC_MIB = 48;
const MAX_RUNC = 16;

export function runcSlots(memTotalMiB = os.totalmem() / 1024 / 1024): number {
  return Math.max(2, Math.min(MAX_RUNC, Math.floor(memTotalMiB / RUNC_MIB)));
}

// A counting semaphore: what waits is a promise, never a spin.
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(n: number) {
    this.free = n;
  }
  async take(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    return () => {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    };
  }
}

export class Runc {
  readonly dialect: Dialect;
  private seq = 0;
  private readonly slots = new Slots(runcSlots());

  constructor(
    readonly binary: string,
    readonly root: string,
    private readonly logDir: string,
  ) {
    this.dialect = dialectOf(binary);
  }

  // Runs `<binary> --root R --log L --log-format json <args>`; resolves to stdout.
  async run(args: string[], call: RuncCall = {}): Promise<string> {
    const release = await this.slots.take();
    try {
      return await this.runNow(args, call);
    } finally {
      release();
    }
  }

  private async runNow(args: string[], call: RuncCall): Promise<string> {
    const logFile = join(this.logDir, `${process.pid}-${++this.seq}.log`);
    const argv = [this.binary, "--root", this.root, "--log", logFile, "--log-format", "json", ...args];
    let proc;
    try {
      proc = Bun.spawn(argv, {
        stdin: call.stdio ? call.stdio[0] : "ignore",
        stdout: call.stdio ? call.stdio[1] : "pipe",
        stderr: call.stdio ? call.stdio[2] : "pipe",
        timeout: call.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        killSignal: "SIGKILL",
      });
    } catch (e) {
      throw new HuskError(`cannot run OCI runtime ${this.binary}: ${errorMessage(e)}`, { code: ErrorCode.Unavailable });
    }
    try {
      const [stdout, stderr, code] = await Promise.all([
        proc.stdout instanceof ReadableStream ? new Response(proc.stdout).text() : "",
        proc.stderr instanceof ReadableStream ? new Response(proc.stderr).text() : "",
        proc.exited,
      ]);
      if (code === 0) return stdout;
      const why = lastError(readLog(logFile)) || (this.dialect.jsonStderr ? lastError(stderr) : "") || stderr.trim() || `exit status ${code}${proc.signalCode ? ` (${proc.signalCode})` : ""}`;
      // runc already says "runc create failed: ..." for most errors. Its
      // reasons have no kind we could tell apart: Unknown.
      throw new HuskError(why.includes(`${args[0]} failed:`) ? why : `${this.binary} ${args[0]}: ${why}`);
    } finally {
      rmSync(logFile, { force: true });
    }
  }
}

function readLog(logFile: string): string {
  try {
    return readFileSync(logFile, "utf8");
  } catch {
    return "";
  }
}

// With --log-format json, runc writes one {"level","msg"} object per line to
// its log; crun writes its errors so to stderr.
function lastError(text: string): string {
  const lines = text.trim().split("\n").reverse();
  for (const line of lines) {
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string };
      if ((entry.level === "error" || entry.level === "fatal") && entry.msg) return entry.msg;
    } catch {
      if (line.trim()) return line.trim();
    }
  }
  return "";
}
