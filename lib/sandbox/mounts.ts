import { spawnSync } from "node:child_process";
import { lstatSync, readdirSync, readFileSync, realpathSync, rmdirSync, unlinkSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { ErrorCode, HuskError, crashPoint, fromSystemError } from "../core/index.ts";

// Removal never follows a mount: a sandbox directory can hold binds of a
// user's files (a container's rw bind mount shared into a VM), and a walk
// that crossed one would delete them. Mounts are found in /proc/self/mountinfo
// (decoded: it writes a space as \040, a newline as \012, a backslash as \134),
// taken down first, and the removal walk refuses to cross any that remain.

const unescape = (field: string): string => field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));

// Every mount point of this mount namespace, decoded.
export function mountPoints(): string[] {
  return readFileSync("/proc/self/mountinfo", "latin1")
    .split("\n")
    .map((l) => l.split(" ")[4])
    .filter((p): p is string => !!p)
    .map((p) => Buffer.from(unescape(p), "latin1").toString("utf8"));
}

// The path as mountinfo names it: symbolic links above it resolved (never
// the last component: a link planted there is removed, not followed).
function canonical(path: string): string {
  try {
    return join(realpathSync(dirname(path)), basename(path));
  } catch {
    return path;
  }
}

// Mount points at or under dir, deepest first.
export function mountsUnder(dir: string): string[] {
  const d = canonical(dir);
  const points = mountPoints().filter((p) => p === d || p.startsWith(d.endsWith("/") ? d : `${d}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

// Takes down every mount at or under dir (lazily: a busy one is detached all
// the same) and checks that none is left.
export function unmountUnder(dir: string): void {
  for (const p of mountsUnder(dir)) spawnSync("umount", ["-l", p]);
  const left = mountsUnder(dir);
  if (left.length)
    throw new HuskError(`cannot unmount ${left.join(", ")}: unmount by hand, then delete again`, { code: ErrorCode.FailedPrecondition });
}

const code = (e: unknown) => (e as NodeJS.ErrnoException)?.code;

// What f returns, or undefined when its path has gone meanwhile.
function unlessGone<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (code(e) === "ENOENT") return undefined;
    throw e;
  }
}

// rm -r that never crosses into another mount: a directory that is a mount
// point, or on another device, stops the removal with an error naming it and
// nothing under it is touched. Symbolic links are removed, never followed.
// Names in `keep` are left in dir itself (the lock and document, removed
// last, so a crash mid-way leaves a sandbox `husk gc` still finds).
export function removeTree(dir: string, opts: { keep?: readonly string[] } = {}): void {
  const top = canonical(dir);
  const st = unlessGone(() => lstatSync(top));
  if (!st) return;
  const mounts = new Set(mountPoints());
  if (!st.isDirectory()) return removeEntry(top, mounts);
  walk(top, st.dev, mounts, new Set(opts.keep ?? []));
  if (!opts.keep?.length) removeEntry(top, mounts, true);
}

function walk(dir: string, dev: number, mounts: Set<string>, keep: Set<string>): void {
  if (mounts.has(dir)) throw refuse(dir);
  for (const name of unlessGone(() => readdirSync(dir)) ?? []) {
    if (keep.has(name)) continue;
    const path = join(dir, name);
    const st = unlessGone(() => lstatSync(path));
    if (!st) continue;
    if (st.isDirectory()) {
      if (st.dev !== dev) throw refuse(path);
      walk(path, dev, mounts, new Set());
      removeEntry(path, mounts, true);
    } else removeEntry(path, mounts);
    crashPoint("destroy:removing");
  }
}

function removeEntry(path: string, mounts: Set<string>, isDir = false): void {
  if (mounts.has(path)) throw refuse(path);
  try {
    if (isDir) rmdirSync(path);
    else unlinkSync(path);
  } catch (e) {
    if (code(e) === "ENOENT") return;
    if (code(e) === "EBUSY") throw refuse(path);
    throw fromSystemError(e);
  }
}

const refuse = (path: string) =>
  new HuskError(`refusing to remove ${path}: it is a mount point (its files are not the sandbox's); unmount it, then delete again`, {
    code: ErrorCode.FailedPrecondition,
  });
