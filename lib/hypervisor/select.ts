import { existsSync, readdirSync } from "node:fs";
import { delimiter, join } from "node:path";
import { HuskError } from "../core/index.ts";
import type { Settings } from "../config/index.ts";
import type { DriverName } from "./types.ts";

export function findExecutable(name: string): string | undefined {
  if (name.includes("/")) return existsSync(name) ? name : undefined;
  for (const dir of (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(delimiter)) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

const hasGuestAssets = (dir: string): boolean => {
  try {
    return readdirSync(dir).some((d) => existsSync(join(dir, d, "manifest.json")));
  } catch {
    return false;
  }
};

// `auto`: cloud-hypervisor if installed, else QEMU when guest assets exist.
export function resolveDriverName(settings: Settings): DriverName {
  if (settings.hypervisor !== "auto") return settings.hypervisor;
  if (findExecutable(settings.clhPath)) return "clh";
  if (findExecutable(settings.qemuPath) && hasGuestAssets(settings.guestDir)) return "qemu";
  throw new HuskError(
    `no hypervisor found: install cloud-hypervisor (${settings.clhPath}), or QEMU (${settings.qemuPath}) ` +
      `with guest assets in ${settings.guestDir} (husk guest build); or choose one with --hypervisor, ` +
      `HUSK_HYPERVISOR or 'hypervisor' in ${settings.configPath} — 'local' runs containers without a VM`,
  );
}
