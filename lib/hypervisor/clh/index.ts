import type { Settings } from "../../config/index.ts";
import { resolveGuestAssets } from "../../guest/index.ts";
import { HuskError } from "../../core/index.ts";
import type { Hypervisor, VmSpec, VmState, VmStatus } from "../types.ts";
import { clhApi, expectState, type ClhApi } from "./api.ts";
import { buildVmConfig } from "./config.ts";
import { AGENT_PORT, FS_TAG, launchVm, startVirtiofsd, startVmm, stopVm, vmmAlive, type VmPaths } from "./vmm.ts";
import { dialHybridVsock } from "./vsock.ts";

// The cloud-hypervisor driver: one VMM process per sandbox, driven over its
// REST API socket; the agent is reached through hybrid vsock and the sandbox's
// shared directory is served by a virtiofsd of its own.

export { buildVmConfig, VmConfigSchema, type VmConfig, type VmConfigInput } from "./config.ts";
export { dialHybridVsock } from "./vsock.ts";
export { clhApi, ClhApiError, type ClhApi, type VmmPing, type VmInfo } from "./api.ts";
export {
  checkpoint,
  restore,
  readSnapshot,
  rewriteSnapshotConfig,
  ClhSnapshotSchema,
  SNAPSHOT_INFO,
  type ClhSnapshot,
  type CheckpointOptions,
  type RestoreOptions,
} from "./snapshot.ts";
export { vmPaths, AGENT_PORT, FS_TAG } from "./vmm.ts";

const GUEST_CID = 3; // each VM has its own vsock space: the lowest guest CID always fits

export function vmConfigFor(spec: VmSpec, p: VmPaths) {
  const assets = spec.assets;
  if (!assets) throw new HuskError(`sandbox ${spec.sandboxId}: the clh driver needs guest assets (kernel and initramfs)`);
  return buildVmConfig({
    kernel: assets.kernel,
    initramfs: assets.initrd,
    // The guest agent listens on vsock here (no virtio-serial port).
    cmdline: `${assets.cmdline} husk.channel=vsock:${AGENT_PORT}`,
    cpus: spec.cpus,
    memoryMiB: spec.memoryMiB,
    fs: [{ tag: FS_TAG, socket: p.virtiofs }],
    vsock: { cid: GUEST_CID, socket: p.vsock },
    serialFile: p.serial,
  });
}

function apiOf(state: VmState): ClhApi {
  if (state.driver !== "clh" || !state.apiSocket)
    throw new HuskError(`the VM in ${state.vmDir} is not a cloud-hypervisor VM (driver ${state.driver})`);
  if (!vmmAlive(state)) throw new HuskError(`cloud-hypervisor of the VM in ${state.vmDir} is not running`);
  return clhApi(state.apiSocket);
}

export function clhDriver(settings: Settings): Hypervisor {
  return {
    name: "clh",
    start: (given) => {
      // The sandbox layer names no assets: boot the configured (or newest) ones.
      const spec = given.assets ? given : { ...given, assets: resolveGuestAssets(settings.guestDir, settings.guestVersion) };
      return launchVm(settings, spec, async ({ bins, paths, state }) => {
        const config = vmConfigFor(spec, paths);
        await startVirtiofsd(bins.virtiofsd, spec.sharedDir, paths, state);
        const { api } = await startVmm(bins.clh, paths, state);
        await api.put("vm.create", config);
        await expectState(api, "Created", "vm.create");
        await api.put("vm.boot");
        await expectState(api, "Running", "vm.boot");
      });
    },
    dialAgent: (state, timeoutMs) => dialHybridVsock(state.agent.path, state.agent.port ?? AGENT_PORT, timeoutMs),
    async pause(state) {
      const api = apiOf(state);
      await api.put("vm.pause");
      await expectState(api, "Paused", "vm.pause");
    },
    async resume(state) {
      const api = apiOf(state);
      await api.put("vm.resume");
      await expectState(api, "Running", "vm.resume");
    },
    async status(state): Promise<VmStatus> {
      if (!vmmAlive(state)) return "stopped";
      const info = await apiOf(state).info();
      if (info?.state === "Running") return "running";
      if (info?.state === "Paused") return "paused";
      return "stopped";
    },
    stop: stopVm,
  };
}
