import { rmSync } from "node:fs";
import { join } from "node:path";
import { errorMessage } from "../core/index.ts";
import { defaultGuestVersion, listGuestVersions } from "../guest/index.ts";
import type { Context } from "./context.ts";

export interface AssetGcEntry {
  version: string;
  removed: boolean;
  reason: string; // why it goes, or why it stays
  error?: string;
}

// The asset version each sandbox booted, by version. A document this husk
// cannot read (newer major, damaged) still names its version somewhere in its
// text, so every known version found there counts as used: never guess "unused".
function versionsInUse(ctx: Context, known: readonly string[]): Map<string, string> {
  const used = new Map<string, string>();
  for (const id of ctx.store.list()) {
    let version: string | undefined;
    try {
      const vm = ctx.store.tryLoad(id)?.vm;
      version = vm && vm.driver !== "local" ? vm.assetsVersion : undefined;
    } catch {
      version = undefined;
    }
    if (version) {
      used.set(version, id);
      continue;
    }
    let raw = "";
    try {
      raw = ctx.store.loadRaw(id);
    } catch {}
    for (const k of known) if (raw.includes(k) && !used.has(k)) used.set(k, id);
  }
  return used;
}

// `husk gc --assets`: removes the guest asset versions that no sandbox in this
// root booted, except the one a new sandbox would boot (the configured version,
// else this build's newest, else the newest). Run after an upgrade, once old sandboxes are gone.
export const currentAssets = (ctx: Context): string | undefined => ctx.settings.guestVersion ?? defaultGuestVersion(ctx.settings.guestDir)?.version;

export function collectAssets(ctx: Context, opts: { dryRun?: boolean } = {}): AssetGcEntry[] {
  const { guestDir } = ctx.settings;
  const versions = listGuestVersions(guestDir).map((m) => m.version);
  const current = currentAssets(ctx);
  const used = versionsInUse(ctx, versions);
  return versions.map((version): AssetGcEntry => {
    if (version === current) return { version, removed: false, reason: "what new sandboxes boot" };
    const user = used.get(version);
    if (user) return { version, removed: false, reason: `booted by sandbox ${user}` };
    if (opts.dryRun) return { version, removed: false, reason: "no sandbox uses it" };
    try {
      rmSync(join(guestDir, version), { recursive: true, force: true });
      return { version, removed: true, reason: "no sandbox uses it" };
    } catch (e) {
      return { version, removed: false, reason: "no sandbox uses it", error: errorMessage(e) };
    }
  });
}
