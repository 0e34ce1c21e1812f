import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as v from "valibot";
import type { Settings } from "../../config/index.ts";
import { HuskError, describeIssues, errorMessage } from "../../core/index.ts";
import type { ClhVmRecord as ClhVm, SnapshotRecord } from "../../persist/index.ts";
import { running } from "../process.ts";
import type { CheckpointOptions, VmSpec } from "../types.ts";
import { clhApi, expectState } from "./api.ts";
import { FS_TAG, launchVm, startClhVirtiofsd, startVmm, type VmPaths } from "./vmm.ts";

// Written beside the snapshot as husk-snapshot.json, so a snapshot directory
// describes itself; persist records the same fields (SnapshotRecord).
export const ClhSnapshotSchema = v.object({
  path: v.string(), // directory cloud-hypervisor wrote (config.json, state.json, memory)
  createdAt: v.string(), // ISO 8601
  vmmVersion: v.string(), // from vmm.ping: restore needs the same version
  sourceVmDir: v.string(), // per-VM paths in config.json lie under it
});
export type ClhSnapshot = v.InferOutput<typeof ClhSnapshotSchema>;

export const SNAPSHOT_INFO = "husk-snapshot.json";
const CONFIG = "config.json";

export interface RestoreOptions {
  memoryRestoreMode?: "Copy" | "OnDemand"; // RestoreConfig.memory_restore_mode
  prefault?: boolean;
}

export async function checkpoint(vm: ClhVm, destDir: string, opts: CheckpointOptions = {}): Promise<SnapshotRecord> {
  if (!running(vm.vmm)) throw new HuskError(`checkpoint: cloud-hypervisor of ${vm.dir} is not running`);
  const dest = resolve(destDir);
  if (existsSync(dest) && readdirSync(dest).length > 0)
    throw new HuskError(`checkpoint: ${dest} is not empty; choose a new directory`);
  const api = clhApi(vm.apiSocket);
  const { version } = await api.ping();
  const vmState = (await api.info())?.state ?? "not created";
  if (vmState === "Running") {
    await api.put("vm.pause");
    await expectState(api, "Paused", "vm.pause");
  } else if (vmState !== "Paused") {
    throw new HuskError(`checkpoint: the VM in ${vm.dir} is ${vmState}; only a running or paused VM can be saved`);
  }
  mkdirSync(dest, { recursive: true, mode: 0o700 });
  await api.put("vm.snapshot", { destination_url: `file://${dest}` });
  const snap: ClhSnapshot = { path: dest, createdAt: new Date().toISOString(), vmmVersion: version, sourceVmDir: vm.dir };
  writeFileSync(join(dest, SNAPSHOT_INFO), JSON.stringify(snap, null, 2) + "\n");
  if (opts.leaveRunning) {
    await api.put("vm.resume");
    await expectState(api, "Running", "vm.resume");
  }
  return { driver: "clh", ...snap };
}

// For a snapshot directory named on the command line.
export function readSnapshot(dir: string): ClhSnapshot {
  const file = join(resolve(dir), SNAPSHOT_INFO);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new HuskError(`${dir} is not a husk snapshot: cannot read ${file}: ${errorMessage(e)}`);
  }
  const parsed = v.safeParse(ClhSnapshotSchema, raw);
  if (!parsed.success) throw new HuskError(`snapshot info ${file}: ${describeIssues(parsed.issues)}`);
  return parsed.output;
}

// Restores into a new VM directory: the shared directory must already be
// rebuilt (the sandbox layer's job); virtiofsd and the VMM start afresh.
export async function restore(
  settings: Settings,
  record: Omit<ClhSnapshot, "vmmVersion"> & { vmmVersion?: string }, // checked here: restore needs the version
  spec: VmSpec,
  opts: RestoreOptions = {},
): Promise<ClhVm> {
  const snap = v.safeParse(ClhSnapshotSchema, record);
  if (!snap.success) throw new HuskError(`restore: invalid snapshot record: ${describeIssues(snap.issues)}`);
  // Links to the snapshot's files must not depend on the caller's directory.
  const snapshot = { ...snap.output, path: resolve(snap.output.path) };
  const configPath = join(snapshot.path, CONFIG);
  if (!existsSync(configPath)) throw new HuskError(`restore: ${snapshot.path} holds no cloud-hypervisor snapshot (${CONFIG} missing)`);
  return launchVm(settings, spec, async ({ bins, paths, vm }) => {
    const { api, version } = await startVmm(bins.clh, paths, vm);
    if (version !== snapshot.vmmVersion)
      throw new HuskError(
        `restore: snapshot ${snapshot.path} was taken with cloud-hypervisor ${snapshot.vmmVersion}, ` +
          `but ${bins.clh} is ${version}; snapshots restore only on the same version`,
      );
    await startClhVirtiofsd(bins.virtiofsd, spec.sharedDir, paths, vm);
    stageSnapshot(snapshot, paths);
    await api.put("vm.restore", {
      source_url: `file://${paths.restore}`,
      ...(opts.memoryRestoreMode ? { memory_restore_mode: opts.memoryRestoreMode } : {}),
      ...(opts.prefault !== undefined ? { prefault: opts.prefault } : {}),
    });
    await expectState(api, "Paused", "vm.restore");
    await api.put("vm.resume");
    await expectState(api, "Running", "vm.resume");
  });
}

// The snapshot itself stays untouched (it may be restored again): the new VM
// gets a directory of links to its files plus its own rewritten config.json.
function stageSnapshot(snapshot: ClhSnapshot, p: VmPaths): void {
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(join(snapshot.path, CONFIG), "utf8"));
  } catch (e) {
    throw new HuskError(`restore: cannot read ${join(snapshot.path, CONFIG)}: ${errorMessage(e)}`);
  }
  rmSync(p.restore, { recursive: true, force: true });
  mkdirSync(p.restore, { mode: 0o700 });
  for (const name of readdirSync(snapshot.path)) {
    if (name !== CONFIG && name !== SNAPSHOT_INFO) symlinkSync(join(snapshot.path, name), join(p.restore, name));
  }
  const rewritten = rewriteSnapshotConfig(config, snapshot.sourceVmDir, p);
  writeFileSync(join(p.restore, CONFIG), JSON.stringify(rewritten));
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

// Moves every per-VM path of a snapshot's config to the new VM directory: any
// string under the old directory, and by name the sockets and files the VMM
// binds or opens (vsock, virtio-fs, serial), wherever the old ones were.
export function rewriteSnapshotConfig(config: unknown, fromVmDir: string, to: VmPaths): Json {
  if (!isObject(config)) throw new HuskError(`restore: the snapshot's ${CONFIG} is not a JSON object`);
  const move = (x: Json): Json => {
    if (typeof x === "string") return x === fromVmDir || x.startsWith(fromVmDir + "/") ? to.dir + x.slice(fromVmDir.length) : x;
    if (Array.isArray(x)) return x.map(move);
    if (isObject(x)) return Object.fromEntries(Object.entries(x).map(([k, val]) => [k, move(val)]));
    return x;
  };
  const out = move(config as Json) as { [k: string]: Json };
  if (isObject(out.vsock)) out.vsock.socket = to.vsock;
  if (Array.isArray(out.fs))
    for (const fs of out.fs) if (isObject(fs) && fs.tag === FS_TAG) fs.socket = to.virtiofs;
  if (isObject(out.serial) && out.serial.mode === "File") out.serial.file = to.serial;
  return out;
}

const isObject = (x: unknown): x is { [k: string]: Json } => typeof x === "object" && x !== null && !Array.isArray(x);
