import { availableParallelism, totalmem } from "node:os";
import type { Settings } from "../config/index.ts";
import { ErrorCode, HuskError, parseSize } from "../core/index.ts";
import type { Spec } from "../oci/index.ts";

// husk's own annotations, which override what the spec implies.
export const VM_MEMORY_ANNOTATION = "io.husk.vm.memory";
export const VM_CPUS_ANNOTATION = "io.husk.vm.cpus";

export interface VmSize {
  memoryMiB: number;
  cpus: number;
}

// Defaults of the config file's [vm] section.
// hostOverheadMiB: what the host side of a VM takes besides guest memory
// (QEMU's own ~116 MiB, TCG's translation cache 128, virtiofsd ~29, proxy and
// each shim ~32 PSS, measured for issue 15), for the host cgroup's limit.
export const VM_DEFAULTS = { memoryMiB: 256, memoryOverheadMiB: 192, minMemoryMiB: 256, cpus: 1, hostOverheadMiB: 384 };

const MiB = 1024 * 1024;
const invalid = (msg: string) => new HuskError(msg, { code: ErrorCode.InvalidArgument });

interface Resources {
  memory?: { limit?: number };
  cpu?: { quota?: number; period?: number; cpus?: string };
}

// What a pod's containers ask for, summed by kubelet and passed by containerd
// (1.6.7 and later) on the pod's sandbox (pause) container, which asks for
// nothing itself. A VM cannot grow once booted (QEMU's microvm has no memory
// or CPU hotplug), so a pod's VM is sized from these at RunPodSandbox.
export const CRI_TYPE = "io.kubernetes.cri.container-type"; // "sandbox" (pause) or "container"
const POD_MEMORY = "io.kubernetes.cri.sandbox-memory";
const POD_CPU_QUOTA = "io.kubernetes.cri.sandbox-cpu-quota";
const POD_CPU_PERIOD = "io.kubernetes.cri.sandbox-cpu-period";

// husk's own annotations (a pod's reach the runtime through containerd's pod_annotations).
const KNOWN = [VM_MEMORY_ANNOTATION, VM_CPUS_ANNOTATION];

// Where the VM's size comes from, with the name an error shows for it.
interface Asked {
  resources: Resources;
  memoryField: string;
}

function podCount(a: Record<string, string>, key: string): number {
  const v = a[key];
  if (v === undefined) return 0;
  if (!/^\s*-?\d+\s*$/.test(v)) throw invalid(`annotation ${key}: ${JSON.stringify(v)} is not a number`);
  return Math.max(0, Number(v));
}

function asked(spec: Spec): Asked {
  const a = spec.annotations ?? {};
  for (const k of Object.keys(a))
    if (k.startsWith("io.husk.") && !KNOWN.includes(k)) throw invalid(`annotation ${k} is not one husk knows (${KNOWN.join(", ")})`);
  const own = { resources: (spec.linux?.resources ?? {}) as Resources, memoryField: "linux.resources.memory.limit" };
  if (a[CRI_TYPE] !== "sandbox" || !(POD_MEMORY in a || POD_CPU_QUOTA in a)) return own;
  const period = podCount(a, POD_CPU_PERIOD);
  const resources = { memory: { limit: podCount(a, POD_MEMORY) }, cpu: { quota: podCount(a, POD_CPU_QUOTA), ...(period ? { period } : {}), cpus: own.resources.cpu?.cpus } };
  return { resources, memoryField: `annotation ${POD_MEMORY} (the pod's memory limits)` };
}

// The VM a new sandbox gets for the container it is made for (or for the pod
// whose sandbox container it is): its memory limit plus the VM's own
// overhead (at least the minimum; the default when unlimited), vCPUs from its
// CPU quota or cpuset; husk's annotations win. Bad values are refused naming
// the field, before anything is made.
export function vmSize(settings: Settings, spec: Spec): VmSize {
  const min = settings.vmMinMemoryMiB ?? VM_DEFAULTS.minMemoryMiB;
  const overhead = settings.vmMemoryOverheadMiB ?? VM_DEFAULTS.memoryOverheadMiB;
  const { resources: r, memoryField } = asked(spec);
  const a = spec.annotations ?? {};
  const limit = r.memory?.limit && r.memory.limit > 0 ? Math.ceil(r.memory.limit / MiB) : undefined;
  const hostMiB = Math.floor(totalmem() / MiB);
  let memoryMiB = limit ? Math.max(limit + overhead, min) : Math.max(settings.vmMemoryMiB ?? VM_DEFAULTS.memoryMiB, min);
  const annotated = a[VM_MEMORY_ANNOTATION];
  if (annotated !== undefined) {
    const bytes = /^\d+$/.test(annotated.trim()) ? Number(annotated) * MiB : parseSize(annotated);
    if (bytes === undefined || bytes <= 0)
      throw invalid(`annotation ${VM_MEMORY_ANNOTATION}: ${JSON.stringify(annotated)} is not a size (MiB, or with a unit: 512m, 2g)`);
    memoryMiB = Math.floor(bytes / MiB);
    if (memoryMiB < min) throw invalid(`annotation ${VM_MEMORY_ANNOTATION}: ${memoryMiB} MiB is below the ${min} MiB a VM needs`);
    if (limit && memoryMiB < limit + overhead)
      throw invalid(`annotation ${VM_MEMORY_ANNOTATION}: ${memoryMiB} MiB cannot hold ${memoryField} (${limit} MiB) and the VM's own ${overhead} MiB`);
  }
  if (memoryMiB > hostMiB) {
    const field = annotated !== undefined ? `annotation ${VM_MEMORY_ANNOTATION}` : memoryField;
    throw invalid(`${field}: a VM of ${memoryMiB} MiB is more than this host's ${hostMiB} MiB`);
  }
  return { memoryMiB, cpus: vmCpus(settings, r, a[VM_CPUS_ANNOTATION]) };
}

// A container joining a pod's VM: its memory limit must fit beside the VM's
// own overhead, or the guest could never give it what it asks for.
export function checkFitsVm(settings: Settings, spec: Spec, vmMemoryMiB: number, what: string): void {
  const overhead = settings.vmMemoryOverheadMiB ?? VM_DEFAULTS.memoryOverheadMiB;
  const limit = ((spec.linux?.resources ?? {}) as Resources).memory?.limit;
  if (!limit || limit <= 0 || Math.ceil(limit / MiB) + overhead <= vmMemoryMiB) return;
  throw invalid(
    `${what}: linux.resources.memory.limit (${Math.ceil(limit / MiB)} MiB) does not fit in the pod's VM of ${vmMemoryMiB} MiB ` +
      `beside its own ${overhead} MiB; give the pod memory limits (containerd passes their sum as ${POD_MEMORY}) or the annotation ${VM_MEMORY_ANNOTATION}`,
  );
}

function vmCpus(settings: Settings, r: Resources, asked: string | undefined): number {
  const host = availableParallelism();
  if (asked !== undefined) {
    if (!/^\s*\d+\s*$/.test(asked) || Number(asked) < 1)
      throw invalid(`annotation ${VM_CPUS_ANNOTATION}: ${JSON.stringify(asked)} is not a number of vCPUs (1 or more)`);
    if (Number(asked) > host) throw invalid(`annotation ${VM_CPUS_ANNOTATION}: ${Number(asked)} is more than this host's ${host} CPUs`);
    return Number(asked);
  }
  const quota = r.cpu?.quota && r.cpu.quota > 0 ? Math.ceil(r.cpu.quota / (r.cpu.period || 100_000)) : 0;
  // A cpuset must fit in the VM: CPU n needs n+1 vCPUs (the guest refuses one beyond them).
  const cpuset = Math.max(0, ...(r.cpu?.cpus ?? "").split(/[,-]/).filter((x) => /^\s*\d+\s*$/.test(x)).map((x) => Number(x) + 1));
  const wanted = Math.max(quota, cpuset);
  return wanted ? Math.min(wanted, host) : (settings.vmCpus ?? VM_DEFAULTS.cpus);
}
