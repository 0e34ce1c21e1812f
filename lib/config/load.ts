import { readFileSync } from "node:fs";
import * as v from "valibot";
import { HuskError, describeIssues, errorMessage, residentEnv } from "../core/index.ts";
import { ConfigFileSchema, SettingsSchema, type ConfigFile, type Settings } from "./schema.ts";

export const DEFAULT_CONFIG_PATH = "/etc/husk/config.toml";

export const DEFAULTS = {
  root: "/run/husk",
  hypervisor: "auto",
  persist: "fs",
  logFormat: "text",
  debug: false,
  ociRuntime: "runc",
  qemuPath: "qemu-system-x86_64",
  clhPath: "cloud-hypervisor",
  guestDir: "/var/lib/husk/guest",
} as const satisfies Partial<Settings>;

// Environment variables, for callers that cannot pass flags (conmon, containerd).
export const ENV_KEYS = {
  root: "HUSK_ROOT",
  hypervisor: "HUSK_HYPERVISOR",
  persist: "HUSK_PERSIST",
  logPath: "HUSK_LOG",
  logFormat: "HUSK_LOG_FORMAT",
  debug: "HUSK_DEBUG",
  ociRuntime: "HUSK_OCI_RUNTIME",
  qemuPath: "HUSK_QEMU",
  clhPath: "HUSK_CLOUD_HYPERVISOR",
  virtiofsdPath: "HUSK_VIRTIOFSD",
  guestDir: "HUSK_GUEST_DIR",
  guestVersion: "HUSK_GUEST_VERSION",
  vmTemplates: "HUSK_VM_TEMPLATES",
} as const satisfies Partial<Record<keyof Settings, string>>;

export type SettingsOverrides = Partial<Omit<Settings, "configPath">> & { configPath?: string };

function readConfigFile(path: string, explicit: boolean): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if (!explicit && (e as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new HuskError(`cannot read config file ${path}: ${errorMessage(e)}`);
  }
  let raw: unknown;
  try {
    raw = Bun.TOML.parse(text);
  } catch (e) {
    throw new HuskError(`config file ${path} is not valid TOML: ${errorMessage(e)}`);
  }
  const parsed = v.safeParse(ConfigFileSchema, raw);
  if (!parsed.success) throw new HuskError(`config file ${path}: ${describeIssues(parsed.issues)}`);
  return parsed.output;
}

function fromFile(f: ConfigFile): SettingsOverrides {
  return {
    root: f.root,
    hypervisor: f.hypervisor,
    persist: f.persist,
    logPath: f.log?.path,
    logFormat: f.log?.format,
    debug: f.log?.debug,
    ociRuntime: f.agent?.runtime,
    qemuPath: f.qemu?.path,
    clhPath: f.clh?.path,
    virtiofsdPath: f.virtiofsd?.path,
    guestDir: f.guest?.dir,
    guestVersion: f.guest?.version,
    vmMemoryMiB: f.vm?.memory,
    vmMemoryOverheadMiB: f.vm?.memory_overhead,
    vmHostOverheadMiB: f.vm?.host_overhead,
    vmMinMemoryMiB: f.vm?.min_memory,
    vmCpus: f.vm?.cpus,
    vmTemplates: f.vm?.templates,
  };
}

function fromEnv(env: Record<string, string | undefined>): SettingsOverrides {
  const out: Record<string, unknown> = {};
  for (const [key, name] of Object.entries(ENV_KEYS)) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    out[key] = key === "debug" || key === "vmTemplates" ? value !== "0" && value !== "false" : value;
  }
  return out;
}

const defined = (o: SettingsOverrides) =>
  Object.fromEntries(Object.entries(o).filter(([, val]) => val !== undefined));

// A helper process husk starts (shim, proxy) runs with exactly the settings
// of the command that started it, passed whole in this variable: the config
// file may have changed since, and callers' flags are not on its command line.
// Helpers stay up, so they get the resident JavaScriptCore tuning too.
export const CHILD_SETTINGS_ENV = "HUSK_SETTINGS";

export function childEnv(settings: Settings): Record<string, string | undefined> {
  return { ...residentEnv(), [CHILD_SETTINGS_ENV]: JSON.stringify(settings) };
}

function inherited(json: string): Settings {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (e) {
    throw new HuskError(`${CHILD_SETTINGS_ENV} is not valid JSON: ${errorMessage(e)}`);
  }
  const parsed = v.safeParse(SettingsSchema, raw);
  if (!parsed.success) throw new HuskError(`${CHILD_SETTINGS_ENV}: ${describeIssues(parsed.issues)}`);
  return parsed.output;
}

// Precedence: defaults < config file < environment < flags; a child's
// inherited settings replace the first three.
export function loadSettings(
  flags: SettingsOverrides = {},
  env: Record<string, string | undefined> = process.env,
): Settings {
  const given = env[CHILD_SETTINGS_ENV];
  if (given) return { ...inherited(given), ...(defined(flags) as Partial<Settings>) };
  const explicitPath = flags.configPath ?? env.HUSK_CONFIG;
  const configPath = explicitPath ?? DEFAULT_CONFIG_PATH;
  const file = fromFile(readConfigFile(configPath, explicitPath !== undefined));
  const merged = { ...DEFAULTS, ...defined(file), ...defined(fromEnv(env)), ...defined(flags), configPath };
  const parsed = v.safeParse(SettingsSchema, merged);
  if (!parsed.success) throw new HuskError(`invalid settings: ${describeIssues(parsed.issues)}`);
  return parsed.output;
}
