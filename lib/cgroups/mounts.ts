import { readFileSync } from "node:fs";
import { join } from "node:path";

// The host's cgroup hierarchies, from /proc/self/mountinfo: one cgroup2 mount
// (v2 or the hybrid layout's "unified"), or a cgroup v1 mount per controller
// set (cpu,cpuacct, memory, name=systemd ...), or both.
export interface Hierarchy {
  mount: string; // where it is mounted
  v2: boolean;
  controllers: string[]; // v1: memory, pids, name=systemd ...; v2: none listed
  own: string; // husk's own cgroup in it, from /proc/self/cgroup
}

export function hierarchies(): Hierarchy[] {
  const own = ownCgroups();
  const seen = new Set<string>();
  const out: Hierarchy[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const [pre, post] = line.split(" - ");
    if (!pre || !post) continue;
    const [fstype, , superOpts = ""] = post.split(" ");
    if (fstype !== "cgroup" && fstype !== "cgroup2") continue;
    const mount = unescape(pre.split(" ")[4]!);
    const v2 = fstype === "cgroup2";
    const controllers = v2 ? [] : superOpts.split(",").filter(isController);
    const key = v2 ? "" : [...controllers].sort().join(",");
    if (seen.has(key)) continue; // the same hierarchy mounted twice
    seen.add(key);
    out.push({ mount, v2, controllers, own: own.get(key) ?? "/" });
  }
  return out;
}

const NOT_CONTROLLERS = new Set(["rw", "ro", "noprefix", "clone_children", "xattr", "cpuset_v2_mode"]);
const isController = (o: string) => !NOT_CONTROLLERS.has(o) && (o.startsWith("name=") || !o.includes("="));

// "4:memory:/a/b" -> memory => /a/b; "0::/x" -> "" => /x
function ownCgroups(): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of readFileSync("/proc/self/cgroup", "utf8").trim().split("\n")) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (m) map.set(m[1]!.split(",").sort().join(","), m[2]!);
  }
  return map;
}

// mountinfo escapes space, tab, newline and backslash as octal.
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export const dirIn = (h: Hierarchy, path: string, relative: boolean) => join(h.mount, relative ? join(h.own, path) : path);
