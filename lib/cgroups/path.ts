import { ErrorCode, HuskError } from "../core/index.ts";

// Where on the host a sandbox's processes are accounted: linux.cgroupsPath of
// its first container, read the way runc reads it. A cgroupfs path is
// absolute (from each hierarchy's root) or relative (to husk's own cgroup);
// with --systemd-cgroup it is "slice:prefix:name", the unit
// <prefix>-<name>.scope under the expanded slice, made here on cgroupfs.

export interface CgroupPath {
  path: string; // "/a/b" or "a/b"
  relative: boolean;
}

const invalid = (msg: string) => new HuskError(msg, { code: ErrorCode.InvalidArgument });

export function hostCgroupPath(cgroupsPath: string, systemd: boolean): CgroupPath {
  const what = `linux.cgroupsPath ${JSON.stringify(cgroupsPath)}`;
  if (cgroupsPath.includes("\0")) throw invalid(`${what}: contains a NUL byte`);
  const path = systemd ? systemdPath(cgroupsPath, what) : cgroupsPath;
  const parts = path.split("/").filter((p) => p !== "");
  if (parts.some((p) => p === "." || p === "..")) throw invalid(`${what}: "." and ".." are not allowed in a cgroup path`);
  if (parts.length === 0) throw invalid(`${what}: names no cgroup below the root`);
  const relative = !path.startsWith("/");
  return { path: (relative ? "" : "/") + parts.join("/"), relative };
}

// "machine-pod.slice:husk:abc" -> "/machine.slice/machine-pod.slice/husk-abc.scope"
function systemdPath(cgroupsPath: string, what: string): string {
  const m = /^([^:/]*):([^:/]*):([^:/]+)$/.exec(cgroupsPath);
  if (!m) throw invalid(`${what}: with --systemd-cgroup it must be "slice:prefix:name"`);
  const [, slice, prefix, name] = m as unknown as [string, string, string, string];
  const unit = name.endsWith(".slice") ? name : prefix ? `${prefix}-${name}.scope` : `${name}.scope`;
  return `${expandSlice(slice || "system.slice", what)}/${unit}`;
}

function expandSlice(slice: string, what: string): string {
  if (slice === "-.slice") return "";
  if (!slice.endsWith(".slice") || slice.startsWith("-") || slice.includes("--"))
    throw invalid(`${what}: ${JSON.stringify(slice)} is not a systemd slice name`);
  const words = slice.slice(0, -".slice".length).split("-");
  return words.map((_, i) => `/${words.slice(0, i + 1).join("-")}.slice`).join("");
}
