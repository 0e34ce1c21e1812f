import { closeSync, fstatSync, openSync, readFileSync, statSync, writeSync, ftruncateSync, constants } from "node:fs";
import { isAlive } from "../core/index.ts";
import { SysError, tryLockExclusive, unlock } from "../sys/index.ts";
import { PersistError } from "./errors.ts";

// flock(2) through libc: the kernel drops the lock when the holder dies, even by
// SIGKILL, so a crashed husk never leaves a sandbox locked.
// Non-blocking attempt: true when taken, false when another holder has it.
function tryFlock(fd: number, path: string): boolean {
  try {
    return tryLockExclusive(fd);
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    throw new PersistError("io", `cannot lock ${path}: flock failed with errno ${e.errno}`);
  }
}

export interface SandboxLock {
  readonly path: string;
  release(): void;
  [Symbol.dispose](): void;
}

export interface LockOptions {
  timeoutMs?: number;
}

export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function holderOf(path: string): string {
  try {
    const pid = Number.parseInt(readFileSync(path, "utf8"), 10);
    if (!(pid > 0)) return "an unknown process";
    return isAlive(pid) ? `pid ${pid}` : `an unknown process (the last recorded holder, pid ${pid}, has exited)`;
  } catch {
    return "an unknown process";
  }
}

// Takes the per-sandbox lock file at `path` (created if missing). Polls rather
// than blocking in flock so the event loop keeps running and the wait has a
// deadline. Not reentrant: a second lock() of the same sandbox in the same
// process waits like any other process.
export async function acquireLock(path: string, sandboxId: string, opts: LockOptions = {}): Promise<SandboxLock> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const deadline = performance.now() + timeoutMs;
  let pause = 1;
  for (;;) {
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    let kept = false;
    try {
      // Whoever deleted the sandbox may have unlinked the file we locked:
      // a lock on an orphaned inode excludes nobody, so start again.
      if (tryFlock(fd, path) && sameFile(fd, path)) {
        recordHolder(fd);
        kept = true;
        return makeLock(fd, path);
      }
    } finally {
      if (!kept) closeSync(fd);
    }
    if (performance.now() >= deadline)
      throw new PersistError(
        "lock-timeout",
        `sandbox ${sandboxId} is locked by ${holderOf(path)}; gave up after ${timeoutMs} ms (lock file ${path})`,
        sandboxId,
        path,
      );
    await sleep(pause + Math.random() * pause);
    pause = Math.min(pause * 2, 20);
  }
}

function sameFile(fd: number, path: string): boolean {
  try {
    const a = fstatSync(fd);
    const b = statSync(path);
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}

// Informative only (for "locked by pid N"): a full disk must not stop a
// delete, so a pid that cannot be written is left out.
function recordHolder(fd: number): void {
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`, 0);
  } catch {}
}

function makeLock(fd: number, path: string): SandboxLock {
  let open = true;
  const release = () => {
    if (!open) return;
    open = false;
    unlock(fd);
    closeSync(fd); // closing drops the lock too; unlocking first is just explicit
  };
  return { path, release, [Symbol.dispose]: release };
}

// A marker lock a process holds while it does something that may crash
// half-way (`husk create` holds <sandbox>/create.lock until the sandbox is
// recorded as made). Others ask whether its holder still lives: the kernel
// drops the lock when the holder dies, however it dies.
export function holdMarker(path: string): SandboxLock | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch {
    return undefined; // no marker: the caller goes on, gc falls back to its grace period
  }
  if (!tryFlock(fd, path)) {
    closeSync(fd);
    return undefined;
  }
  recordHolder(fd);
  return makeLock(fd, path);
}

// true: the marker exists and nobody holds it (its holder died or finished);
// false: held; undefined: no marker there.
export function markerAbandoned(path: string): boolean | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    if (!tryFlock(fd, path)) return false;
    unlock(fd);
    return true;
  } finally {
    closeSync(fd);
  }
}
