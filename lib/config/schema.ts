import * as v from "valibot";

export const HYPERVISORS = ["auto", "clh", "qemu", "local"] as const;
export const PERSIST_STORES = ["fs", "sqlite"] as const;
export const LOG_FORMATS = ["text", "json"] as const;

const PositiveInt = v.pipe(v.number(), v.integer(), v.minValue(1));

// The config file, /etc/husk/config.toml. Unknown keys are ignored so that a
// file written for a newer release still works after a rollback.
export const ConfigFileSchema = v.partial(
  v.object({
    root: v.string(),
    hypervisor: v.picklist(HYPERVISORS),
    persist: v.picklist(PERSIST_STORES),
    log: v.partial(
      v.object({ path: v.string(), format: v.picklist(LOG_FORMATS), debug: v.boolean() }),
    ),
    agent: v.partial(v.object({ runtime: v.string() })),
    qemu: v.partial(v.object({ path: v.string() })),
    clh: v.partial(v.object({ path: v.string() })),
    virtiofsd: v.partial(v.object({ path: v.string() })),
    guest: v.partial(v.object({ dir: v.string(), version: v.string() })),
    // VM size (MiB, vCPUs): memory when the container sets no limit, the
    // overhead added to a limit, the least a VM gets, and the vCPU default.
    vm: v.partial(
      v.object({
        memory: PositiveInt,
        memory_overhead: v.pipe(v.number(), v.integer(), v.minValue(0)),
        min_memory: PositiveInt,
        cpus: PositiveInt,
        host_overhead: v.pipe(v.number(), v.integer(), v.minValue(0)), // added to guest memory for the host cgroup's limit
        templates: v.boolean(), // false: every VM boots cold (no VM templates)
      }),
    ),
  }),
);
export type ConfigFile = v.InferOutput<typeof ConfigFileSchema>;

// What every command sees after file, environment and flags are merged.
export const SettingsSchema = v.object({
  configPath: v.string(),
  root: v.string(),
  hypervisor: v.picklist(HYPERVISORS),
  persist: v.picklist(PERSIST_STORES),
  logPath: v.optional(v.string()),
  logFormat: v.picklist(LOG_FORMATS),
  debug: v.boolean(),
  ociRuntime: v.string(),
  qemuPath: v.string(),
  clhPath: v.string(),
  virtiofsdPath: v.optional(v.string()),
  guestDir: v.string(),
  guestVersion: v.optional(v.string()),
  vmMemoryMiB: v.optional(v.number()),
  vmMemoryOverheadMiB: v.optional(v.number()),
  vmHostOverheadMiB: v.optional(v.number()),
  vmMinMemoryMiB: v.optional(v.number()),
  vmCpus: v.optional(v.number()),
  vmTemplates: v.optional(v.boolean()), // default true
});
export type Settings = v.InferOutput<typeof SettingsSchema>;
