// `npm run package`: the Debian package and a tarball of the same tree, built
// from a husk binary (dist/husk by default, or an older release's binary: the
// packaging code is versioned on its own, see LAYOUT) and the guest assets
// that binary builds. See docs/installing.md for what the package does.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { HuskError, errorMessage } from "../lib/core/index.ts";
import { loadReleases } from "../compat/index.ts";
import { controlFiles, type BinaryInfo } from "./control.ts";
import { REPO, buildGuestAssets, forbiddenPaths, normalizeTree, sh } from "./tree.ts";

// The packaging layout: paths, maintainer scripts, conffile. Bump it when any
// of them changes; installed packages carry it (X-Husk-Layout).
export const LAYOUT = 1;

export const PATHS = {
  binary: "usr/bin/husk",
  guest: "usr/share/husk/guest",
  config: "etc/husk/config.toml",
  doc: "usr/share/doc/husk",
} as const;

const DOCS = ["README.md", "docs/installing.md", "docs/compatibility.md", "docs/on-disk-format.md"];

export interface PackageOptions {
  binary: string; // the husk to package
  out: string; // directory for the .deb and the .tar.zst
  guestCache: string; // guest build dir: a build already there is reused
  log?: (line: string) => void;
}

export interface PackageResult {
  version: string; // the package's version
  deb: string;
  tarball: string;
  assetsVersion: string;
}

function binaryInfo(binary: string): BinaryInfo {
  const r = sh(binary, ["version", "--json"], { HUSK_CONFIG: "/dev/null" });
  const j = JSON.parse(r) as { version: string; commit: string; persist: { reads: string[] } };
  const help = spawnSync(binary, ["gc", "--help"], { encoding: "utf8", env: { ...process.env, HUSK_CONFIG: "/dev/null" } });
  return { version: j.version, commit: j.commit, persistReads: j.persist.reads, gcAssets: `${help.stdout}${help.stderr}`.includes("--assets") };
}

// A release's own binary keeps its version; any other build is newer than the
// release it starts from (0.2.0+g<commit> > 0.2.0), so dpkg sees an upgrade.
function packageVersion(info: BinaryInfo): string {
  const clean = /^[0-9a-f]{7,40}$/.test(info.commit);
  const released = loadReleases().some((r: { version: string; commit: string }) => r.version === info.version && clean && r.commit.startsWith(info.commit));
  if (released) return info.version;
  return `${info.version}+g${info.commit.replace(/[^0-9a-z]+/g, ".")}`;
}

// Timestamps come from the binary's commit: the same inputs give the same bytes.
function sourceDateEpoch(info: BinaryInfo): number {
  if (process.env.SOURCE_DATE_EPOCH) return Number(process.env.SOURCE_DATE_EPOCH);
  const commit = info.commit.replace(/-dirty$/, "");
  const r = spawnSync("git", ["show", "-s", "--format=%ct", /^[0-9a-f]+$/.test(commit) ? commit : "HEAD"], { cwd: REPO, encoding: "utf8" });
  return Number(r.stdout.trim()) || 0;
}

// The agent the guest runs is this very binary: one inode for both paths
// halves the package (dpkg and tar keep hard links). An upgrade replaces
// /usr/bin/husk by a new file, so the asset's copy is never changed in place.
function linkAgent(binary: string, assetDir: string, agent: { path: string; sha256: string } | undefined): void {
  if (!agent || createHash("sha256").update(readFileSync(binary)).digest("hex") !== agent.sha256) return;
  const path = join(assetDir, agent.path);
  rmSync(path);
  linkSync(binary, path);
}

function stageTree(root: string, opts: PackageOptions, info: BinaryInfo, epoch: number): string {
  mkdirSync(join(root, "usr/bin"), { recursive: true });
  cpSync(opts.binary, join(root, PATHS.binary)); // never stripped: the binary carries its code after the ELF
  const assets = buildGuestAssets(opts.binary, opts.guestCache, opts.log);
  const dest = join(root, PATHS.guest, assets.version);
  cpSync(assets.dir, dest, { recursive: true });
  // The build time becomes the source date, so new sandboxes boot the newest
  // release's assets whichever was built first on this machine.
  const manifest = JSON.parse(readFileSync(join(dest, "manifest.json"), "utf8"));
  manifest.builtAt = new Date(epoch * 1000).toISOString();
  writeFileSync(join(dest, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
  linkAgent(join(root, PATHS.binary), dest, manifest.files.agent);
  mkdirSync(join(root, "etc/husk"), { recursive: true });
  cpSync(join(REPO, "packaging/config.toml"), join(root, PATHS.config));
  mkdirSync(join(root, PATHS.doc), { recursive: true });
  for (const d of DOCS) cpSync(join(REPO, d), join(root, PATHS.doc, d.replace(/^docs\//, "")));
  cpSync(join(REPO, "packaging/copyright"), join(root, PATHS.doc, "copyright"));
  return assets.version;
}

export function buildPackage(opts: PackageOptions): PackageResult {
  const log = opts.log ?? (() => {});
  const info = binaryInfo(opts.binary);
  const version = packageVersion(info);
  const epoch = sourceDateEpoch(info);
  const work = mkdtempSync(join(tmpdir(), "husk-package-"));
  try {
    const root = join(work, "root");
    log(`package: staging husk ${version} (binary ${info.version}, commit ${info.commit})`);
    const assetsVersion = stageTree(root, opts, info, epoch);
    controlFiles(root, { info, version, layout: LAYOUT, conffiles: [`/${PATHS.config}`] });
    normalizeTree(root, epoch);
    const leaks = forbiddenPaths(root, [REPO, work, opts.guestCache, opts.out]);
    if (leaks.length) throw new HuskError(`build-machine paths inside the package: ${leaks.join("; ")}`);
    mkdirSync(opts.out, { recursive: true });
    const deb = join(opts.out, `husk_${version}_amd64.deb`);
    const tarball = join(opts.out, `husk-${version}-linux-amd64.tar.zst`);
    const env = { SOURCE_DATE_EPOCH: String(epoch) };
    log(`package: dpkg-deb → ${deb}`);
    sh("dpkg-deb", ["--root-owner-group", "-Zzstd", "--build", root, deb], env);
    log(`package: tar → ${tarball}`);
    sh("sh", ["-c", `tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@${epoch} --format=gnu --exclude=./DEBIAN -C "$1" -cf - . | zstd -q -T0 -f -o "$2"`, "tar", root, tarball], env);
    return { version, deb, tarball, assetsVersion };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function main(): void {
  const { values } = parseArgs({
    options: {
      binary: { type: "string", default: join(REPO, "dist/husk") },
      out: { type: "string", default: join(REPO, "dist") },
      "guest-cache": { type: "string", default: process.env.HUSK_GUEST_CACHE ?? "/var/tmp/husk-test-guest" },
    },
  });
  if (!existsSync(values.binary!)) throw new HuskError(`${values.binary} does not exist: npm run build makes dist/husk, or pass --binary <path>`);
  const r = buildPackage({ binary: values.binary!, out: values.out!, guestCache: values["guest-cache"]!, log: (l) => console.error(l) });
  console.log(`built ${r.deb} and ${r.tarball} (guest assets ${r.assetsVersion})`);
}

if (import.meta.main) {
  try {
    main();
  } catch (e) {
    console.error(`package: ${errorMessage(e)}`);
    process.exit(1);
  }
}
