import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Settings } from "../../config/index.ts";
import { HuskError, isAlive, terminate, validateId } from "../../core/index.ts";
import { virtiofsdCommand } from "../qemu/virtiofsd.ts";
import type { GuestAssets, VmSpec, VmState } from "../types.ts";
import { clhApi, type ClhApi } from "./api.ts";
import { requireExecutable, sleep, socketExists, spawnDetached, waitUntil, type Spawned } from "./process.ts";

// Per-VM files, all inside the VM directory. Restore rewrites every path of a
// snapshot's config that lies under the old directory to this same layout.
export function vmPaths(vmDir: string) {
  return {
    dir: vmDir,
    api: join(vmDir, "clh-api.sock"),
    vmmLog: join(vmDir, "clh.log"),
    vsock: join(vmDir, "vsock.sock"),
    virtiofs: join(vmDir, "virtiofs.sock"),
    virtiofsdLog: join(vmDir, "virtiofsd.log"),
    serial: join(vmDir, "serial.log"),
    restore: join(vmDir, "restore"), // the snapshot as this VM restores it
  };
}
export type VmPaths = ReturnType<typeof vmPaths>;

export const AGENT_PORT = 1024; // the guest agent's vsock port
export const FS_TAG = "husk"; // VmSpec.sharedDir's virtio-fs tag
const START_TIMEOUT_MS = 10_000;

export interface Binaries {
  clh: string;
  virtiofsd: string[]; // a command: the bundled one runs through its own ld-linux
}

// virtiofsd is found as the QEMU driver finds it (settings, then the copy
// bundled with the guest assets, then the host's), so both drivers agree.
export function resolveBinaries(settings: Settings, assets?: GuestAssets): Binaries {
  return {
    clh: requireExecutable(settings.clhPath, "cloud-hypervisor", "HUSK_CLOUD_HYPERVISOR or [clh] path in the config file"),
    virtiofsd: assets
      ? virtiofsdCommand(assets, settings.virtiofsdPath)
      : [requireExecutable(settings.virtiofsdPath ?? "virtiofsd", "virtiofsd", "HUSK_VIRTIOFSD or [virtiofsd] path in the config file")],
  };
}

// Checks what start and restore both need before anything is spawned.
function prepareVmDir(spec: VmSpec): VmPaths {
  validateId(spec.sandboxId, "sandbox");
  if (!isDir(spec.sharedDir)) throw new HuskError(`shared directory ${spec.sharedDir} of sandbox ${spec.sandboxId} does not exist`);
  mkdirSync(spec.vmDir, { recursive: true, mode: 0o700 });
  const p = vmPaths(spec.vmDir);
  // Sockets left by an earlier VM in this directory would make bind fail.
  for (const s of [p.api, p.vsock, p.virtiofs]) rmSync(s, { force: true });
  return p;
}

const isDir = (path: string) => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

function baseState(spec: VmSpec, p: VmPaths): VmState {
  return {
    driver: "clh",
    vmDir: spec.vmDir,
    apiSocket: p.api,
    agent: { kind: "hybrid-vsock", path: p.vsock, port: AGENT_PORT },
    ...(spec.assets ? { assetsVersion: spec.assets.version } : {}),
    extra: {},
  };
}

export async function startVirtiofsd(cmd: string[], sharedDir: string, p: VmPaths, state: VmState): Promise<void> {
  const [bin, ...pre] = cmd as [string, ...string[]];
  const args = [...pre, `--socket-path=${p.virtiofs}`, `--shared-dir=${sharedDir}`, "--cache=auto", "--announce-submounts"];
  const proc = spawnDetached(bin, args, p.virtiofsdLog);
  state.virtiofsdPid = proc.pid;
  state.extra = { ...state.extra, virtiofsdStartTime: proc.startTime };
  await waitUntil(socketExists(p.virtiofs), proc, `virtiofsd (${bin})`, p.virtiofsdLog, START_TIMEOUT_MS);
}

// Starts the VMM with only its API socket and waits until it answers vmm.ping.
export async function startVmm(bin: string, p: VmPaths, state: VmState): Promise<{ api: ClhApi; version: string }> {
  const proc = spawnDetached(bin, ["--api-socket", p.api], p.vmmLog);
  state.pid = proc.pid;
  state.extra = { ...state.extra, pidStartTime: proc.startTime };
  const api = clhApi(p.api);
  let version = "";
  const answers = async () => {
    if (!existsSync(p.api)) return false;
    try {
      version = (await api.ping(1000)).version;
      return true;
    } catch {
      return false;
    }
  };
  await waitUntil(answers, proc, `cloud-hypervisor (${bin})`, p.vmmLog, START_TIMEOUT_MS);
  state.extra = { ...state.extra, vmmVersion: version };
  return { api, version };
}

const num = (x: unknown): number | undefined => (typeof x === "number" ? x : undefined);
export const vmmProc = (s: VmState): Spawned | undefined =>
  s.pid ? { pid: s.pid, startTime: num(s.extra?.pidStartTime) } : undefined;
const virtiofsdProc = (s: VmState): Spawned | undefined =>
  s.virtiofsdPid ? { pid: s.virtiofsdPid, startTime: num(s.extra?.virtiofsdStartTime) } : undefined;

export const vmmAlive = (s: VmState): boolean => {
  const p = vmmProc(s);
  return !!p && isAlive(p.pid, p.startTime);
};

async function exited(p: Spawned, ms: number): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 20) {
    if (!isAlive(p.pid, p.startTime)) return true;
    await sleep(20);
  }
  return false;
}

// Idempotent: asks the VMM to shut the VM and itself down, then makes sure.
export async function stopVm(state: VmState): Promise<void> {
  const vmm = vmmProc(state);
  if (vmm && isAlive(vmm.pid, vmm.startTime) && state.apiSocket) {
    const api = clhApi(state.apiSocket);
    // A VM that is not running answers 404/405; the VMM may already be going.
    await api.put("vm.shutdown", undefined, 5000).catch(() => {});
    await api.put("vmm.shutdown", undefined, 5000).catch(() => {});
    if (!(await exited(vmm, 3000))) await terminate(vmm.pid, vmm.startTime, 3000);
  }
  const fsd = virtiofsdProc(state);
  // virtiofsd exits once the VM is gone; a stray one is ended here.
  if (fsd && !(await exited(fsd, 500))) await terminate(fsd.pid, fsd.startTime, 3000);
  const p = vmPaths(state.vmDir);
  for (const s of [p.api, p.vsock, p.virtiofs]) rmSync(s, { force: true });
}

export interface NewVm {
  bins: Binaries;
  paths: VmPaths;
  state: VmState; // filled in as processes start, so a failure can clean up
}

// Start and restore alike: whatever `bringUp` started is stopped if it fails.
export async function launchVm(settings: Settings, spec: VmSpec, bringUp: (vm: NewVm) => Promise<void>): Promise<VmState> {
  const bins = resolveBinaries(settings, spec.assets);
  const paths = prepareVmDir(spec);
  const state = baseState(spec, paths);
  try {
    await bringUp({ bins, paths, state });
    return state;
  } catch (e) {
    await stopVm(state);
    throw e;
  }
}
