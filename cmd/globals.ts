import { HuskError, configureLog } from "../lib/core/index.ts";
import { loadSettings, type Settings, type SettingsOverrides } from "../lib/config/index.ts";

// Global options come before the command, as with runc:
//   husk --root /run/x --log f --log-format json create ...
export interface GlobalOptions extends SettingsOverrides {
  systemdCgroup?: boolean;
  rootless?: string;
  criu?: string;
}

type Spec = { key: keyof GlobalOptions; takesValue: boolean };
const FLAGS: Record<string, Spec> = {
  "--root": { key: "root", takesValue: true },
  "--log": { key: "logPath", takesValue: true },
  "--log-format": { key: "logFormat", takesValue: true },
  "--debug": { key: "debug", takesValue: false },
  "--config": { key: "configPath", takesValue: true },
  "--hypervisor": { key: "hypervisor", takesValue: true },
  "--persist": { key: "persist", takesValue: true },
  "--systemd-cgroup": { key: "systemdCgroup", takesValue: false },
  "--rootless": { key: "rootless", takesValue: true },
  "--criu": { key: "criu", takesValue: true }, // runc's; accepted, a VM snapshot needs no CRIU
};

export function splitGlobals(argv: string[]): { globals: GlobalOptions; rest: string[] } {
  const globals: Record<string, unknown> = {};
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--") || arg === "--") break;
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg : arg.slice(0, eq);
    const spec = FLAGS[name];
    if (!spec) break; // --help, --version and unknown flags are citty's to handle
    if (!spec.takesValue) {
      globals[spec.key] = eq < 0 ? true : arg.slice(eq + 1) !== "false";
      continue;
    }
    const value = eq < 0 ? argv[++i] : arg.slice(eq + 1);
    if (value === undefined) throw new HuskError(`global option ${name} needs a value`);
    globals[spec.key] = value;
  }
  return { globals: globals as GlobalOptions, rest: argv.slice(i) };
}

let current: GlobalOptions = {};
let settings: Settings | undefined;

export function setGlobals(g: GlobalOptions): void {
  current = g;
  settings = undefined;
}

export const globalOptions = (): GlobalOptions => current;

// Settings are read on first use so that `husk --version` never touches the config file.
export function getSettings(): Settings {
  if (!settings) {
    const { systemdCgroup: _s, rootless: _r, criu: _c, ...overrides } = current;
    // Flags alone decide where errors in the config file itself are logged.
    configureLog({ path: current.logPath, format: current.logFormat === "json" ? "json" : "text", debug: !!current.debug });
    settings = loadSettings(overrides);
    configureLog({ path: settings.logPath, format: settings.logFormat, debug: settings.debug });
  }
  return settings;
}
