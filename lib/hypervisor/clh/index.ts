import type { Settings } from "../../config/index.ts";
import { bootableAssets } from "../../guest/index.ts";
import { ErrorCode, HuskError } from "../../core/index.ts";
import { ClhVmSchema, type ClhVmRecord as ClhVm } from "../../persist/index.ts";
import { running } from "../process.ts";
import type { Hypervisor, VmSpec, VmStatus } from "../types.ts";
import { clhApi, expectState, type ClhApi } from "./api.ts";
import { buildVmConfig } from "./config.ts";
import { CLH_FEATURES } from "./features.ts";
import { checkpoint, restore } from "./snapshot.ts";
import { AGENT_PORT, FS_TAG, launchVm, startClhVirtiofsd, startVmm, stopVm, type VmPaths } from "./vmm.ts";
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

function apiOf(vm: ClhVm): ClhApi {
  if (!running(vm.vmm)) throw new HuskError(`cloud-hypervisor of the VM in ${vm.dir} is not running`);
  return clhApi(vm.apiSocket);
}

export function clhDriver(settings: Settings): Hypervisor<ClhVm> {
  // The sandbox layer names no assets: boot the configured (or newest) ones.
  const withAssets = (given: VmSpec): VmSpec =>
    given.assets ? given : { ...given, assets: bootableAssets(settings.guestDir, settings.guestVersion) };
  return {
    name: "clh",
    features: CLH_FEATURES,
    schema: ClhVmSchema,
    start: (given) => {
      if (given.network?.nics.length)
        throw new HuskError(`sandbox ${given.sandboxId}: the clh driver cannot carry a network namespace into its VM yet; use the qemu driver`, {
          code: ErrorCode.Unimplemented,
        });
      const spec = withAssets(given);
      return launchVm(settings, spec, async ({ bins, paths, vm }) => {
        const config = vmConfigFor(spec, paths);
        await startClhVirtiofsd(bins.virtiofsd, spec.sharedDir, paths, vm);
        const { api } = await startVmm(bins.clh, paths, vm);
        await api.put("vm.create", config);
        await expectState(api, "Created", "vm.create");
        await api.put("vm.boot");
        await expectState(api, "Running", "vm.boot");
      });
    },
    channel: (vm) => ({ kind: "hybrid-vsock", path: vm.vsockSocket, port: vm.agentPort }),
    dialAgent: (vm, timeoutMs) => dialHybridVsock(vm.vsockSocket, vm.agentPort, timeoutMs),
    mainProcess: (vm) => vm.vmm,
    vitals: (vm) => [vm.vmm, vm.virtiofsd?.process].filter((p) => p !== undefined),
    async pause(vm) {
      const api = apiOf(vm);
      await api.put("vm.pause");
      await expectState(api, "Paused", "vm.pause");
    },
    async resume(vm) {
      const api = apiOf(vm);
      await api.put("vm.resume");
      await expectState(api, "Running", "vm.resume");
    },
    async status(vm): Promise<VmStatus> {
      if (!running(vm.vmm)) return "stopped";
      const info = await apiOf(vm).info();
      if (info?.state === "Running") return "running";
      if (info?.state === "Paused") return "paused";
      return "stopped";
    },
    stop: stopVm,
    checkpoint: (vm, dest, opts) => checkpoint(vm, dest, opts),
    // A snapshot carries its own kernel and memory: no guest assets to resolve.
    restore: (snap, spec) => restore(settings, snap, spec),
  };
}
