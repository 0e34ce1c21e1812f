import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { ErrorCode, HuskError, preview } from "../core/index.ts";
import type { Bundle } from "./bundle.ts";
import type { MountSpec, Spec } from "./spec.ts";

// What runc would only find out halfway through making the container (or
// report as a raw errno from mount(2) or uid_map) is refused here, by field,
// before anything is made, whichever driver runs the container.

const invalid = (msg: string) => new HuskError(msg, { code: ErrorCode.InvalidArgument });

// Options runc turns into mount flags, propagation or recursive attributes
// (runc's specconv), plus those of its extensions. Everything else is data
// for the filesystem.
const FLAG_OPTIONS = new Set([
  "acl", "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion", "lazytime", "loud",
  "mand", "noacl", "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime", "nomand", "norelatime",
  "nostrictatime", "nosuid", "nosymfollow", "rbind", "relatime", "remount", "ro", "rw", "silent", "strictatime",
  "suid", "symfollow", "sync",
  "private", "shared", "slave", "unbindable", "rprivate", "rshared", "rslave", "runbindable",
  "rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec", "rnodiratime", "rdiratime", "rrelatime",
  "rnorelatime", "rnoatime", "ratime", "rstrictatime", "rnostrictatime", "rnosymfollow", "rsymfollow",
  "tmpcopyup", "idmap", "ridmap",
]);

// The data options the kernel accepts for the filesystems a bundle usually
// mounts (anything else it refuses with a bare EINVAL). Other types (and
// binds, whose data the kernel ignores) are handed on unchecked.
const DATA_KEYS: Record<string, ReadonlySet<string>> = {
  tmpfs: new Set(["size", "nr_blocks", "nr_inodes", "mode", "uid", "gid", "huge", "mpol", "inode32", "inode64", "noswap", "quota", "usrquota", "grpquota"]),
  proc: new Set(["hidepid", "gid", "subset"]),
  devpts: new Set(["newinstance", "ptmxmode", "mode", "gid", "uid", "max"]),
  mqueue: new Set(),
  sysfs: new Set(),
};

// SELinux labels, which podman adds on labelled hosts, go with any filesystem.
const LABEL_KEYS = new Set(["context", "fscontext", "defcontext", "rootcontext", "seclabel"]);

export const isBindMount = (m: MountSpec) => m.type === "bind" || (m.options ?? []).some((o) => o === "bind" || o === "rbind");

function checkMountOptions(m: MountSpec, field: string): void {
  const keys = !isBindMount(m) && m.type ? DATA_KEYS[m.type] : undefined;
  if (!keys) return;
  for (const o of m.options ?? []) {
    if (FLAG_OPTIONS.has(o)) continue;
    const key = o.includes("=") ? o.slice(0, o.indexOf("=")) : o;
    if (!keys.has(key) && !LABEL_KEYS.has(key)) throw invalid(`${field}.options: ${preview(o)} is not an option of ${m.type} mounts`);
  }
}

function checkMounts(bundle: Bundle): void {
  (bundle.spec.mounts ?? []).forEach((m, i) => {
    const field = `mounts[${i}]`;
    checkMountOptions(m, field);
    if (!isBindMount(m)) return;
    if (!m.source) throw invalid(`${field}.source: a bind mount needs a source`);
    const source = isAbsolute(m.source) ? m.source : resolve(bundle.path, m.source);
    if (!existsSync(source)) throw invalid(`${field}.source: ${source.length <= 256 ? source : preview(source, 256)} does not exist`);
  });
}

interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

const MAX_ID = 2 ** 32 - 1;
const MAX_RANGES = 340; // what the kernel takes in one uid_map since 4.15

// What the kernel's uid_map/gid_map would refuse: empty or overflowing
// ranges, too many of them, ranges that overlap on either side.
function checkIdMappings(list: unknown, field: string): void {
  if (list === undefined) return;
  if (!Array.isArray(list)) throw invalid(`${field}: must be a list of {containerID, hostID, size}`);
  if (list.length > MAX_RANGES) throw invalid(`${field}: ${list.length} ranges, over the kernel's limit of ${MAX_RANGES}`);
  const ranges = list.map((r, i) => idRange(r, `${field}[${i}]`));
  for (const side of ["containerID", "hostID"] as const)
    ranges.forEach((a, i) =>
      ranges.slice(i + 1).forEach((b, k) => {
        if (a[side] < b[side] + b.size && b[side] < a[side] + a.size)
          throw invalid(`${field}: ranges ${i} and ${i + 1 + k} overlap in ${side}`);
      }),
    );
}

function idRange(r: unknown, field: string): IdMapping {
  const m = r as Partial<IdMapping> | null;
  for (const k of ["containerID", "hostID", "size"] as const) {
    const n = m?.[k];
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > MAX_ID) throw invalid(`${field}.${k}: must be an integer from 0 to ${MAX_ID}`);
  }
  const { containerID, hostID, size } = m as IdMapping;
  if (size === 0) throw invalid(`${field}.size: must be at least 1`);
  if (containerID + size - 1 > MAX_ID || hostID + size - 1 > MAX_ID) throw invalid(`${field}: the range goes past id ${MAX_ID}`);
  return { containerID, hostID, size };
}

// Mappings need a new user namespace to apply to, and a new user namespace
// needs mappings (a namespace joined by path brings its own).
function checkUserNamespace(linux: NonNullable<Spec["linux"]>): void {
  const l = linux as { uidMappings?: unknown; gidMappings?: unknown };
  checkIdMappings(l.uidMappings, "linux.uidMappings");
  checkIdMappings(l.gidMappings, "linux.gidMappings");
  const userns = linux.namespaces?.find((n) => n.type === "user");
  const has = (x: unknown) => Array.isArray(x) && x.length > 0;
  if (userns && !userns.path && !(has(l.uidMappings) && has(l.gidMappings)))
    throw invalid("linux.namespaces: a new user namespace needs linux.uidMappings and linux.gidMappings");
  if (!userns && (has(l.uidMappings) || has(l.gidMappings)))
    throw invalid("linux.uidMappings: mappings are given but linux.namespaces has no user namespace");
}

export function checkBundle(bundle: Bundle): void {
  checkMounts(bundle);
  if (bundle.spec.linux) checkUserNamespace(bundle.spec.linux);
}
