import { createHash } from "node:crypto";
import { readFileSync, renameSync, statSync, writeFileSync, type Stats } from "node:fs";
import { join } from "node:path";
import { HuskError, errorMessage, log } from "../core/index.ts";
import { readManifest, resolveGuestAssets, type GuestAssets, type ManifestFile } from "./manifest.ts";

// Before a VM boots, every file its manifest lists must still hash to what
// the manifest says: a damaged kernel or agent (a disk error, a half-copied
// package) would otherwise fail somewhere inside the guest, far from the cause.
// Hashing ~180 MB costs ~0.6 s, so a file already verified with the same
// inode, size, mtime and ctime is not hashed again (ctime changes on any write
// or metadata change and cannot be set back by a user).

type Verified = Record<string, string>; // path -> "<stat key> <sha256>"

const statKey = (st: Stats) => `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;

function readCache(cacheFile: string | undefined): Verified {
  if (!cacheFile) return {};
  try {
    const raw = JSON.parse(readFileSync(cacheFile, "utf8"));
    return raw && typeof raw === "object" && !Array.isArray(raw) ? (raw as Verified) : {};
  } catch {
    return {};
  }
}

// Best effort: a cache that cannot be written only costs the next boot a re-hash.
function writeCache(cacheFile: string | undefined, cache: Verified): void {
  if (!cacheFile) return;
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(cache));
    renameSync(tmp, cacheFile);
  } catch (e) {
    log.debug(`guest assets: cannot write the verification cache ${cacheFile}: ${errorMessage(e)}`);
  }
}

function checkFile(assets: GuestAssets, f: ManifestFile, cache: Verified): boolean {
  const path = join(assets.dir, f.path);
  const refuse = (what: string) =>
    new HuskError(`guest asset file ${path} (assets ${assets.version}) ${what}; nothing was booted: reinstall the husk package or rebuild the assets with 'husk guest build'`);
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    throw refuse(`cannot be read: ${errorMessage(e)}`);
  }
  if (st.size !== f.size) throw refuse(`has ${st.size} bytes, its manifest says ${f.size} (sha256 ${f.sha256})`);
  const key = `${statKey(st)} ${f.sha256}`;
  if (cache[path] === key) return false;
  const actual = createHash("sha256").update(readFileSync(path)).digest("hex");
  if (actual !== f.sha256) throw refuse(`is corrupted: its sha256 is ${actual}, its manifest says ${f.sha256}`);
  cache[path] = key;
  return true;
}

// Throws a one-line error naming the first file whose size or sha256 differs
// from the manifest. `cacheFile` remembers files already found intact.
export function verifyGuestAssets(assets: GuestAssets, cacheFile?: string): void {
  const m = readManifest(assets.dir);
  const files = [m.files.kernel, m.files.initrd, m.files.agent, m.files.virtiofsd].filter((f): f is ManifestFile => !!f);
  const cache = readCache(cacheFile);
  let hashed = false;
  for (const f of files) hashed = checkFile(assets, f, cache) || hashed;
  if (hashed) writeCache(cacheFile, cache);
}

// The assets a new VM boots (the configured version, else the newest), verified.
export function bootableAssets(guestDir: string, version: string | undefined): GuestAssets {
  const assets = resolveGuestAssets(guestDir, version);
  verifyGuestAssets(assets, verifiedCacheFile(guestDir));
  return assets;
}

// The verification cache sits in the guest dir, beside what it vouches for
// (dot-names are not asset versions; a sandbox root must stay empty when idle).
export const verifiedCacheFile = (guestDir: string) => join(guestDir, ".verified.json");
