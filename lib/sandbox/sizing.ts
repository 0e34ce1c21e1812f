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
export const VM_DEFAULTS = { memoryMiB: 256, memoryOverheadMiB: 192, minMemoryMiB: 256, cpus: 1 };

const MiB = 1024 * 1024;
const invalid = (msg: string) => new HuskError(msg, { code: ErrorCode.InvalidArgument });

interface Resources {
  memory?: { limit?: number };
  cpu?: { quota?: number; period?: number; cpus?: string };
}

// The VM a new sandbox gets for the container it is made for: its memory
// limit plus the VM's own overhead (at least the minimum; the default when
// unlimited), vCPUs from its CPU quota or cpuset; husk's annotations win.
// Bad values are refused naming the field, before anything is made.
export function vmSize(settings: Settings, spec: Spec): VmSize {
  const min = settings.vmMinMemoryMiB ?? VM_DEFAULTS.minMemoryMiB;
  const overhead = settings.vmMemoryOverheadMiB ?? VM_DEFAULTS.memoryOverheadMiB;
  const r = (spec.linux?.resources ?? {}) as Resources;
  const a = spec.annotations ?? {};
  const limit = r.memory?.limit && r.memory.limit > 0 ? Math.ceil(r.memory.limit / MiB) : undefined;
  const hostMiB = Math.floor(totalmem() / MiB);
  let memoryMiB = limit ? Math.max(limit + overhead, min) : Math.max(settings.vmMemoryMiB ?? VM_DEFAULTS.memoryMiB, min);
  const asked = a[VM_MEMORY_ANNOTATION];
  if (asked !== undefined) {
    const bytes = /^\d+$/.test(asked.trim()) ? Number(asked) * MiB : parseSize(asked);
    if (bytes === undefined || bytes <= 0)
      throw invalid(`annotation ${VM_MEMORY_ANNOTATION}: ${JSON.stringify(asked)} is not a size (MiB, or with a unit: 512m, 2g)`);
    memoryMiB = Math.floor(bytes / MiB);
    if (memoryMiB < min) throw invalid(`annotation ${VM_MEMORY_ANNOTATION}: ${memoryMiB} MiB is below the ${min} MiB a VM needs`);
    if (limit && memoryMiB < limit + overhead)
      throw invalid(
        `annotation ${VM_MEMORY_ANNOTATION}: ${memoryMiB} MiB cannot hold linux.resources.memory.limit (${limit} MiB) and the VM's own ${overhead} MiB`,
      );
  }
  if (memoryMiB > hostMiB) {
    const field = asked !== undefined ? `annotation ${VM_MEMORY_ANNOTATION}` : "linux.resources.memory.limit";
    throw invalid(`${field}: a VM of ${memoryMiB} MiB is more than this host's ${hostMiB} MiB`);
  }
  return { memoryMiB, cpus: vmCpus(settings, r, a[VM_CPUS_ANNOTATION]) };
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
