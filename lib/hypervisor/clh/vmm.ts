import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Settings } from "../../config/index.ts";
import { HuskError, validateId } from "../../core/index.ts";
import type { GuestAssets } from "../../guest/index.ts";
import type { ClhVmRecord as ClhVm } from "../../persist/index.ts";
import { isDirectory, requireExecutable, spawnDetached, stopProcess, waitUntil } from "../process.ts";
import type { VmSpec } from "../types.ts";
import { startVirtiofsd, stopVirtiofsd, virtiofsdCommand } from "../virtiofsd.ts";
import { clhApi, type ClhApi } from "./api.ts";

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

// virtiofsd is found as for every VM driver (settings, then the copy bundled
// with the guest assets, then the host's).
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
  if (!isDirectory(spec.sharedDir)) throw new HuskError(`shared directory ${spec.sharedDir} of sandbox ${spec.sandboxId} does not exist`);
  mkdirSync(spec.vmDir, { recursive: true, mode: 0o700 });
  const p = vmPaths(spec.vmDir);
  // Sockets left by an earlier VM in this directory would make bind fail.
  for (const s of [p.api, p.vsock, p.virtiofs]) rmSync(s, { force: true });
  return p;
}

function baseRecord(spec: VmSpec, p: VmPaths): ClhVm {
  return {
    driver: "clh",
    dir: spec.vmDir,
    apiSocket: p.api,
    vsockSocket: p.vsock,
    agentPort: AGENT_PORT,
    ...(spec.assets ? { assetsVersion: spec.assets.version } : {}),
  };
}

export async function startClhVirtiofsd(cmd: string[], sharedDir: string, p: VmPaths, vm: ClhVm): Promise<void> {
  vm.virtiofsd = await startVirtiofsd({ command: cmd, socket: p.virtiofs, sharedDir, logPath: p.virtiofsdLog });
}

// Starts the VMM with only its API socket and waits until it answers vmm.ping.
export async function startVmm(bin: string, p: VmPaths, vm: ClhVm): Promise<{ api: ClhApi; version: string }> {
  vm.vmm = spawnDetached(bin, ["--api-socket", p.api], p.vmmLog);
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
  await waitUntil(answers, vm.vmm, `cloud-hypervisor (${bin})`, p.vmmLog, START_TIMEOUT_MS);
  vm.vmmVersion = version;
  return { api, version };
}

// Idempotent: asks the VMM to shut the VM and itself down, then makes sure.
export async function stopVm(vm: ClhVm): Promise<void> {
  await stopProcess(vm.vmm, async () => {
    const api = clhApi(vm.apiSocket);
    // A VM that is not running answers 404/405; the VMM may already be going.
    await api.put("vm.shutdown", undefined, 5000).catch(() => {});
    await api.put("vmm.shutdown", undefined, 5000).catch(() => {});
  });
  await stopVirtiofsd(vm.virtiofsd);
  const p = vmPaths(vm.dir);
  for (const s of [p.api, p.vsock, p.virtiofs]) rmSync(s, { force: true });
}

export interface NewVm {
  bins: Binaries;
  paths: VmPaths;
  vm: ClhVm; // filled in as processes start, so a failure can clean up
}

// Start and restore alike: whatever `bringUp` started is stopped if it fails.
export async function launchVm(settings: Settings, spec: VmSpec, bringUp: (n: NewVm) => Promise<void>): Promise<ClhVm> {
  const bins = resolveBinaries(settings, spec.assets);
  const paths = prepareVmDir(spec);
  const vm = baseRecord(spec, paths);
  try {
    await bringUp({ bins, paths, vm });
    return vm;
  } catch (e) {
    await stopVm(vm);
    throw e;
  }
}
