import { availableParallelism } from "node:os";
import { ErrorCode, HuskError } from "../../core/index.ts";
import type { MountSpec, Spec } from "../../oci/index.ts";

// A container in a VM: the guest is its whole machine, so the cgroup it gets
// is the guest's own (cgroup v2, mounted by the guest's init), named after the
// container; the host's cgroupsPath (cgroupfs or systemd "slice:prefix:name")
// means nothing there. As runc gives it on a cgroup v2 host, the container
// has a cgroup namespace and sees its own limits at /sys/fs/cgroup.

const CGROUP_MOUNT: MountSpec = {
  destination: "/sys/fs/cgroup",
  type: "cgroup",
  source: "cgroup",
  options: ["nosuid", "noexec", "nodev", "relatime", "ro"],
};

export function inGuest(spec: Spec, cgroupName: string, cpus = availableParallelism()): Spec {
  if (spec.linux?.resources) checkGuestResources(spec.linux.resources, cpus);
  const linux = spec.linux ?? {};
  const namespaces = linux.namespaces ?? [];
  const mounts = spec.mounts ?? [];
  return {
    ...spec,
    // The agent protects itself from the OOM killer (-1000), and runc's
    // children inherit that: a container must stay killable when it
    // exceeds its own memory limit.
    process: spec.process && { ...spec.process, oomScoreAdj: spec.process.oomScoreAdj ?? 0 },
    mounts: mounts.some((m) => m.destination === "/sys/fs/cgroup") ? mounts : [...mounts, CGROUP_MOUNT],
    linux: {
      ...linux,
      cgroupsPath: `/husk/${cgroupName}`,
      namespaces: namespaces.some((n) => n.type === "cgroup") ? namespaces : [...namespaces, { type: "cgroup" }],
    },
  };
}

const invalid = (msg: string) => new HuskError(msg, { code: ErrorCode.InvalidArgument });

// What the guest cannot honour is refused by name, before runc gives a
// cgroup write error.
interface Resources {
  hugepageLimits?: unknown[];
  cpu?: { cpus?: string };
  blockIO?: Record<string, unknown>;
}

// Per-device I/O limits name the host's block devices (major:minor); a VM's
// container has none of them, its files come over virtio-fs.
const BLOCK_DEVICE_LISTS = ["weightDevice", "throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice", "throttleWriteIOPSDevice"];

export function checkGuestResources(resources: object, cpus = availableParallelism()): void {
  const r = resources as Resources;
  if (r.hugepageLimits?.length)
    throw new HuskError("linux.resources.hugepageLimits: huge pages are not available inside husk's VMs", { code: ErrorCode.Unimplemented });
  const perDevice = BLOCK_DEVICE_LISTS.find((k) => (r.blockIO?.[k] as unknown[] | undefined)?.length);
  if (perDevice)
    throw new HuskError(`linux.resources.blockIO.${perDevice}: the host's block devices are not in husk's VMs, so their I/O cannot be limited there`, {
      code: ErrorCode.Unimplemented,
    });
  const set = r.cpu?.cpus;
  if (set) {
    const outside = parseCpuList(set, "linux.resources.cpu.cpus").filter((c) => c >= cpus);
    if (outside.length)
      throw invalid(`linux.resources.cpu.cpus: CPU ${outside.join(",")} is outside the VM's ${cpus} vCPU${cpus === 1 ? "" : "s"} (0-${cpus - 1})`);
  }
}

// "0-2,4" -> [0,1,2,4]
export function parseCpuList(list: string, field: string): number[] {
  const out: number[] = [];
  for (const part of list.split(",")) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (!m) throw invalid(`${field}: ${JSON.stringify(list)} is not a CPU list such as "0-1,3"`);
    const [lo, hi] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (hi < lo || hi - lo > 4096) throw invalid(`${field}: ${JSON.stringify(list)} is not a CPU list such as "0-1,3"`);
    for (let c = lo; c <= hi; c++) out.push(c);
  }
  return out;
}
