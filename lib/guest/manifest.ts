import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as v from "valibot";
import { COMMIT, HuskError, describeIssues, validateId } from "../core/index.ts";

// One directory per asset version, side by side under the guest dir, each with
// a manifest.json. A sandbox records the version it booted, so upgrading husk
// (and building new assets) never changes a running sandbox's kernel or agent.

export const MANIFEST_FORMAT = 1;

const FileSchema = v.object({ path: v.string(), sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)), size: v.number() });

export const ManifestSchema = v.object({
  format: v.literal(MANIFEST_FORMAT),
  version: v.string(),
  builtAt: v.string(),
  huskVersion: v.string(),
  huskCommit: v.string(),
  inputs: v.optional(v.string()), // digest of packages, agent and recipe: an identical rebuild is skipped
  kernelRelease: v.string(),
  cmdline: v.string(), // appended to the driver's own console/clock arguments
  agent: v.picklist(["initrd", "share"]), // where the guest finds `husk agent`
  files: v.object({
    kernel: FileSchema,
    initrd: FileSchema,
    agent: v.optional(FileSchema), // the husk binary served to the guest when agent = "share"
    virtiofsd: v.optional(FileSchema),
    virtiofsdLibDir: v.optional(v.string()),
  }),
  packages: v.array(v.object({ name: v.string(), version: v.string() })),
  modules: v.array(v.string()),
});
export type Manifest = v.InferOutput<typeof ManifestSchema>;
export type ManifestFile = v.InferOutput<typeof FileSchema>;

export const MANIFEST_NAME = "manifest.json";

export function readManifest(dir: string): Manifest {
  const path = join(dir, MANIFEST_NAME);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new HuskError(`cannot read guest manifest ${path}: ${(e as Error).message}`);
  }
  const parsed = v.safeParse(ManifestSchema, raw);
  if (!parsed.success) throw new HuskError(`guest manifest ${path} is invalid: ${describeIssues(parsed.issues)}`);
  return parsed.output;
}

// Every readable asset version under guestDir, newest build first.
export function listGuestVersions(guestDir: string): Manifest[] {
  let names: string[];
  try {
    names = readdirSync(guestDir);
  } catch {
    return [];
  }
  const out: Manifest[] = [];
  for (const name of names) {
    if (name.startsWith(".") || !existsSync(join(guestDir, name, MANIFEST_NAME))) continue;
    try {
      out.push(readManifest(join(guestDir, name)));
    } catch {
      // a damaged version must not hide the good ones
    }
  }
  return out.sort((a, b) => b.builtAt.localeCompare(a.builtAt) || b.version.localeCompare(a.version));
}

// What a driver boots: one asset version's kernel, initrd and command line.
export interface GuestAssets {
  version: string; // asset version directory name, recorded so a sandbox keeps booting the same one
  dir: string;
  kernel: string;
  initrd: string;
  cmdline: string;
}

export function assetsFromManifest(guestDir: string, m: Manifest): GuestAssets {
  const dir = join(guestDir, m.version);
  return { version: m.version, dir, kernel: join(dir, m.files.kernel.path), initrd: join(dir, m.files.initrd.path), cmdline: m.cmdline };
}

// What a new sandbox boots when no version is configured: the newest version
// this very build assembled, else the newest of all. After a rollback, the
// newer release's assets kept for its running sandboxes are newer than this
// release's own, yet not what this release should boot. (A source run, commit
// "dev", has no build of its own.)
export function defaultGuestVersion(guestDir: string): Manifest | undefined {
  const all = listGuestVersions(guestDir);
  const own = COMMIT !== "dev" && COMMIT !== "unknown" ? all.find((m) => m.huskCommit === COMMIT) : undefined;
  return own ?? all[0];
}

// The named version, or the default one (above).
export function resolveGuestAssets(guestDir: string, version?: string): GuestAssets {
  if (version) {
    validateId(version, "guest asset version");
    const dir = join(guestDir, version);
    if (!existsSync(join(dir, MANIFEST_NAME)))
      throw new HuskError(`guest asset version ${version} not found in ${guestDir} (husk guest list shows what exists)`);
    return assetsFromManifest(guestDir, readManifest(dir));
  }
  const chosen = defaultGuestVersion(guestDir);
  if (!chosen) throw new HuskError(`no guest assets in ${guestDir}: run 'husk guest build' first`);
  return assetsFromManifest(guestDir, chosen);
}
