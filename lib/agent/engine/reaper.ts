import { log } from "../../core/index.ts";
import { becomeSubreaper, decodeWaitStatus, tryReap } from "../../sys/index.ts";
import type { ExitStatus } from "./types.ts";

// Container inits and detached execs are grandchildren: runc exits after
// starting them, so they are reparented to us (we are a child subreaper) and
// only waitpid(pid) can collect their status. Bun has no hook for that, so
// watched pids are polled with WNOHANG; polling stops when none are left.

const POLL_MS = 20;

interface Watch {
  resolve: (s: ExitStatus) => void;
}

export class Reaper {
  private readonly watched = new Map<number, Watch>();
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor() {
    becomeSubreaper();
  }

  watch(pid: number): Promise<ExitStatus> {
    return new Promise((resolve) => {
      this.watched.set(pid, { resolve });
      this.timer ??= setInterval(() => this.poll(), POLL_MS);
      this.poll();
    });
  }

  get size(): number {
    return this.watched.size;
  }

  private poll(): void {
    for (const [pid, w] of this.watched) {
      const r = tryReap(pid);
      if (!r.done) continue;
      this.watched.delete(pid);
      if ("gone" in r) {
        // Not our child: something between us and it reaped it. The status is lost.
        log.warn(`pid ${pid} was reaped elsewhere; its exit status is unknown`);
        w.resolve({ exitCode: 255, exitedAt: new Date() });
      } else {
        w.resolve({ ...decodeWaitStatus(r.status), exitedAt: new Date() });
      }
    }
    if (this.watched.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
