import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HuskError } from "../core/index.ts";

// .debs come from Debian through apt-get itself (its sources, proxy and
// keyring settings apply) into a cache directory, so a second build downloads
// nothing. Packages only in a newer release (virtiofsd: trixie) are fetched
// through a private sources list and private lists, leaving the host's apt alone.

export interface Deb {
  name: string;
  version: string;
  path: string;
  downloaded: boolean;
}

export interface AptSource {
  suite: string; // "" = the host's own sources
  cacheDir: string;
}

const KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg";

function privateDir(src: AptSource): string {
  return join(src.cacheDir, `apt-${src.suite}`);
}

function aptOptions(src: AptSource): string[] {
  const base = ["-o", "APT::Sandbox::User=root", "-o", "Acquire::Retries=2"];
  if (!src.suite) return base;
  const d = privateDir(src);
  return [
    ...base,
    "-o", `Dir::Etc::SourceList=${join(d, "sources.list")}`,
    "-o", "Dir::Etc::SourceParts=/nonexistent",
    "-o", `Dir::State::Lists=${join(d, "lists")}`,
    "-o", `Dir::Cache=${join(d, "cache")}`,
    "-o", "Dir::State::Status=/dev/null",
  ];
}

function run(cmd: string, args: string[], cwd?: string): { ok: boolean; out: string; err: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.error) throw new HuskError(`cannot run ${cmd}: ${r.error.message} (husk guest build needs Debian's apt and dpkg)`);
  return { ok: r.status === 0, out: r.stdout, err: r.stderr };
}

function aptUpdate(src: AptSource): void {
  if (src.suite) {
    const d = privateDir(src);
    for (const sub of ["lists/partial", "cache/archives/partial"]) mkdirSync(join(d, sub), { recursive: true });
    writeFileSync(join(d, "sources.list"), `deb [signed-by=${KEYRING}] http://deb.debian.org/debian ${src.suite} main\n`);
  }
  const r = run("apt-get", [...aptOptions(src), "-qq", "update"]);
  if (!r.ok) throw new HuskError(`apt-get update${src.suite ? ` (${src.suite})` : ""} failed: ${lastLines(r.err)}`);
}

const lastLines = (s: string) => s.trim().split("\n").slice(-3).join("; ");
const DAY_MS = 86_400_000;

// Private lists are refreshed daily; the host's are refreshed only when a package is missing.
function ensureLists(src: AptSource): void {
  if (!src.suite) return;
  const stamp = join(privateDir(src), "lists", "lock");
  const fresh = existsSync(stamp) && Date.now() - statSync(stamp).mtimeMs < DAY_MS;
  if (!fresh) aptUpdate(src);
}

interface Uri {
  file: string;
  size: number;
  sha256?: string;
}

function printUris(src: AptSource, pkgs: string[]): Map<string, Uri> | string {
  const r = run("apt-get", [...aptOptions(src), "download", "--print-uris", ...pkgs]);
  if (!r.ok) return r.err;
  const out = new Map<string, Uri>();
  for (const line of r.out.split("\n")) {
    const m = /^'[^']+' (\S+) (\d+) (?:SHA256:([0-9a-f]{64}))?/.exec(line);
    if (!m) continue;
    const file = m[1]!;
    out.set(decodeURIComponent(file).split("_")[0]!, { file, size: Number(m[2]), sha256: m[3] });
  }
  return out;
}

function missingPackage(err: string): string | undefined {
  return /(?:Unable to locate package|Can't select candidate version from package|has no installation candidate)\s*'?([\w.+-]+)/.exec(err)?.[1];
}

function resolveUris(src: AptSource, pkgs: string[]): Map<string, Uri> {
  ensureLists(src);
  let uris = printUris(src, pkgs);
  if (typeof uris === "string" && missingPackage(uris)) {
    aptUpdate(src); // a fresh machine has empty or stale lists
    uris = printUris(src, pkgs);
  }
  if (typeof uris === "string") {
    const pkg = missingPackage(uris);
    const where = src.suite ? `Debian ${src.suite}` : "the host's apt sources";
    throw new HuskError(pkg ? `package ${pkg} is not available from ${where}` : `apt-get download failed: ${lastLines(uris)}`);
  }
  return uris;
}

const sha256File = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

function cachedOk(path: string, uri: Uri): boolean {
  if (!existsSync(path) || statSync(path).size !== uri.size) return false;
  return !uri.sha256 || sha256File(path) === uri.sha256;
}

// Downloads what the cache lacks; returns every package's .deb in the cache.
export function downloadDebs(src: AptSource, pkgs: string[]): Deb[] {
  const dir = join(src.cacheDir, "debs");
  mkdirSync(dir, { recursive: true });
  const uris = resolveUris(src, pkgs);
  const debs: Deb[] = [];
  const fetch: string[] = [];
  for (const name of pkgs) {
    const uri = uris.get(name);
    if (!uri) throw new HuskError(`apt-get did not resolve package ${name}`);
    const path = join(dir, uri.file); // apt keeps the epoch colon escaped (%3a)
    const downloaded = !cachedOk(path, uri);
    if (downloaded) fetch.push(name);
    debs.push({ name, version: decodeURIComponent(uri.file).split("_")[1]!, path, downloaded });
  }
  if (fetch.length) {
    const r = run("apt-get", [...aptOptions(src), "-qq", "download", ...fetch], dir);
    if (!r.ok) throw new HuskError(`apt-get download ${fetch.join(" ")} failed: ${lastLines(r.err)}`);
    for (const d of debs) if (d.downloaded && !cachedOk(d.path, uris.get(d.name)!))
      throw new HuskError(`downloaded ${d.path} does not match the size/sha256 apt announced`);
  }
  return debs;
}

// The concrete package a metapackage points at (linux-image-cloud-amd64 -> linux-image-<release>).
export function dependencyOf(src: AptSource, meta: string, prefix: string): string {
  ensureLists(src);
  let r = run("apt-cache", [...aptOptions(src), "depends", meta]);
  if (!r.ok || !r.out.includes("Depends:")) {
    aptUpdate(src);
    r = run("apt-cache", [...aptOptions(src), "depends", meta]);
  }
  const dep = r.out.split("\n").map((l) => /^\s+Depends: (\S+)/.exec(l)?.[1]).find((d) => d?.startsWith(prefix));
  if (!dep) throw new HuskError(`package ${meta} is not available from apt (or names no ${prefix}* package): ${lastLines(r.err)}`);
  return dep;
}

export function extractDeb(deb: Deb, root: string): void {
  mkdirSync(root, { recursive: true });
  const r = run("dpkg-deb", ["-x", deb.path, root]);
  if (!r.ok) throw new HuskError(`cannot extract ${deb.path}: ${lastLines(r.err)}`);
}
