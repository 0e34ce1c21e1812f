import { dlopen, FFIType, read } from "bun:ffi";
import { closeSync, fstatSync, openSync, readFileSync, statSync, writeSync, ftruncateSync, constants } from "node:fs";
import { isAlive } from "../core/index.ts";
import { PersistError } from "./errors.ts";

// flock(2) through libc: the kernel drops the lock when the holder dies, even by
// SIGKILL, so a crashed husk never leaves a sandbox locked.
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EINTR = 4;
const EWOULDBLOCK = 11;

let libc: ReturnType<typeof openLibc> | undefined;
function openLibc() {
  return dlopen("libc.so.6", {
    flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
    __errno_location: { args: [], returns: FFIType.ptr },
  }).symbols;
}

// Non-blocking attempt: true when taken, false when another holder has it.
function tryFlock(fd: number, path: string): boolean {
  libc ??= openLibc();
  for (;;) {
    if (libc.flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
    const errno = read.i32(libc.__errno_location()!, 0);
    if (errno === EWOULDBLOCK) return false;
    if (errno !== EINTR) throw new PersistError("io", `cannot lock ${path}: flock failed with errno ${errno}`);
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

function recordHolder(fd: number): void {
  ftruncateSync(fd, 0);
  writeSync(fd, `${process.pid}\n`, 0);
}

function makeLock(fd: number, path: string): SandboxLock {
  let open = true;
  const release = () => {
    if (!open) return;
    open = false;
    libc!.flock(fd, LOCK_UN);
    closeSync(fd); // closing drops the lock too; unlocking first is just explicit
  };
  return { path, release, [Symbol.dispose]: release };
}
