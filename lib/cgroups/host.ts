import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { HuskError, errorMessage } from "../core/index.ts";
import { dirIn, hierarchies, type Hierarchy } from "./mounts.ts";
import type { CgroupPath } from "./path.ts";
import type { HostCgroupRecord } from "../persist/index.ts";

// A sandbox's host cgroup: the same path in every hierarchy, as runc makes it
// for a container. Only the leaf directories are recorded and removed;
// parents (podman's libpod_parent, containerd's namespace) belong to others.
export type HostCgroup = HostCgroupRecord;

export function makeCgroup(where: CgroupPath, memoryLimit: number): HostCgroup {
  const made: HostCgroup = { path: where.path, dirs: [] };
  try {
    for (const h of hierarchies()) {
      const dir = dirIn(h, where.path, where.relative);
      mkdirs(h, dir);
      made.dirs.push(dir);
      if (setMemoryLimit(h, dir, memoryLimit)) made.memoryLimit = memoryLimit;
    }
    return made;
  } catch (e) {
    for (const dir of made.dirs) tryRmdir(dir);
    throw new HuskError(`host cgroup ${where.path}: ${errorMessage(e)}`);
  }
}

// A v1 cpuset directory takes tasks only once it has cpus and mems: each
// level made here starts with its parent's.
function mkdirs(h: Hierarchy, dir: string): void {
  if (existsSync(dir)) return;
  mkdirs(h, dirname(dir));
  mkdirSync(dir);
  if (!h.controllers.includes("cpuset")) return;
  for (const f of ["cpuset.cpus", "cpuset.mems"]) writeFileSync(`${dir}/${f}`, readFileSync(`${dirname(dir)}/${f}`, "utf8").trim() || "\n");
}

function setMemoryLimit(h: Hierarchy, dir: string, bytes: number): boolean {
  const file = h.v2 ? `${dir}/memory.max` : h.controllers.includes("memory") ? `${dir}/memory.limit_in_bytes` : undefined;
  if (!file || !existsSync(file)) return false; // v2 without the memory controller delegated here
  writeFileSync(file, String(bytes));
  return true;
}

// Moves a process (by default this one) in: whatever it starts afterwards
// (VMM, virtiofsd, proxy, shims) is born there.
export function enterCgroup(cg: HostCgroup, pid = process.pid): void {
  for (const dir of cg.dirs) {
    try {
      writeFileSync(`${dir}/cgroup.procs`, String(pid));
    } catch (e) {
      throw new HuskError(`host cgroup ${cg.path}: cannot enter ${dir}: ${errorMessage(e)}`);
    }
  }
}

// Removes the leaves once the sandbox's processes have left them (they are
// stopped by then; a shim may take a moment to exit). This process steps out
// to the parent first. Returns what could not be removed.
export async function removeCgroup(cg: HostCgroup, waitMs = 2_000): Promise<string[]> {
  const deadline = Date.now() + waitMs;
  let left = cg.dirs.filter(existsSync);
  for (const dir of left) leave(dir);
  while (left.length) {
    left = left.filter((d) => !tryRmdir(d));
    if (!left.length || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return left;
}

function leave(dir: string): void {
  try {
    const pids = readFileSync(`${dir}/cgroup.procs`, "utf8").split("\n");
    if (pids.includes(String(process.pid))) writeFileSync(`${dirname(dir)}/cgroup.procs`, String(process.pid));
  } catch {
    // gone already
  }
}

function tryRmdir(dir: string): boolean {
  try {
    rmdirSync(dir);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ENOENT";
  }
}
