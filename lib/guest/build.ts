import { createHash } from "node:crypto";
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { COMMIT, HuskError, VERSION, selfCommand } from "../core/index.ts";
import { dependencyOf, downloadDebs, extractDeb, type AptSource, type Deb } from "./apt.ts";
import { writeCpio, type CpioEntry } from "./cpio.ts";
import { initScript } from "./init.ts";
import { MANIFEST_FORMAT, MANIFEST_NAME, listGuestVersions, readManifest, type Manifest, type ManifestFile } from "./manifest.ts";
import { DEVICE_MODULES, GUEST_MODULES, guestModules, moduleLine, type GuestModule } from "./modules.ts";
import { extractVmlinux } from "./vmlinux.ts";

export interface GuestBuildOptions {
  dest: string; // the guest dir: one sub-directory per asset version
  cacheDir?: string; // .deb cache and private apt lists; default <dest>/.cache
  agentBinary?: string; // the husk served to the guest; default this husk (compiled) or dist/husk
  agentIn?: "share" | "initrd"; // see README: "share" keeps the initramfs small
  progress?: (line: string) => void;
}

export interface GuestBuildResult {
  manifest: Manifest;
  dir: string;
  reused: boolean; // identical assets were already there
  downloaded: string[]; // .debs fetched this time (empty when the cache had them all)
}

const KERNEL_META = "linux-image-cloud-amd64";
// crun, not runc, runs the guest's containers: under TCG its create takes a
// third of runc's, and it with its libraries takes a quarter of runc's room
// in the initramfs (docs/architecture.md). A crun that knows runtime-spec
// 1.2 (1.21) is Debian trixie's, linked against trixie's glibc: both come
// from trixie, as virtiofsd does.
const HOST_PKGS = ["busybox-static"];
const RUNTIME_SUITE = "trixie";
const RUNTIME_PKGS = ["crun", "libc6", "libseccomp2", "libcap2", "libsystemd0", "libyajl2"];
const VIRTIOFSD_PKGS = ["virtiofsd", "libc6", "libcap-ng0", "libseccomp2", "libgcc-s1"];
// What crun and the (glibc-linked) Bun agent load in the guest.
const GUEST_LIBS = [
  ...["ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1"],
  ...["libseccomp.so.2", "libsystemd.so.0", "libyajl.so.2", "libcap.so.2"],
];
const LIB_DIRS = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "usr/lib64"];
export const GUEST_CMDLINE = "quiet panic=-1";

// Follows symlinks inside an extracted tree: absolute targets point into the tree, not the host.
function resolveIn(root: string, rel: string): string {
  let path = join(root, rel);
  for (let i = 0; i < 40; i++) {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) throw new HuskError(`${rel} is missing from the extracted packages`);
    if (!st.isSymbolicLink()) return path;
    const target = readlinkSync(path);
    path = isAbsolute(target) ? join(root, target) : join(dirname(path), target);
  }
  throw new HuskError(`${rel}: too many symlinks`);
}

function findLib(root: string, soname: string): string {
  for (const dir of LIB_DIRS) if (lstatSync(join(root, dir, soname), { throwIfNoEntry: false })) return resolveIn(root, join(dir, soname));
  throw new HuskError(`library ${soname} is not in the extracted packages under ${root}`);
}

function defaultAgent(): string {
  const [exe, script] = selfCommand();
  if (!script) return exe!; // running compiled: serve this very binary
  const dist = join(dirname(script), "..", "dist", "husk");
  if (existsSync(dist)) return dist;
  throw new HuskError("no agent binary to put in the guest: run 'npm run build' for dist/husk, or pass --agent <path>");
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

class Tree {
  entries: CpioEntry[] = [];
  private dirs = new Set<string>();
  dir(path: string): void {
    const parts = path.split("/").filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      if (!this.dirs.has(p)) this.entries.push({ kind: "dir", path: p }), this.dirs.add(p);
    }
  }
  file(path: string, data: Uint8Array, mode = 0o644): void {
    this.dir(dirname(path));
    this.entries.push({ kind: "file", path, data, mode });
  }
  link(path: string, target: string): void {
    this.dir(dirname(path));
    this.entries.push({ kind: "symlink", path, target });
  }
}

function initramfs(userRoot: string, modulesRoot: string, release: string, modules: GuestModule[], agent?: string): Uint8Array {
  const t = new Tree();
  for (const d of ["dev", "proc", "sys", "run", "tmp", "root", "etc/husk", "var/lib"]) t.dir(d);
  t.file("init", new TextEncoder().encode(initScript(release)), 0o755);
  t.file("bin/busybox", readFileSync(resolveIn(userRoot, "bin/busybox")), 0o755);
  t.file("usr/bin/crun", readFileSync(resolveIn(userRoot, "usr/bin/crun")), 0o755);
  for (const lib of GUEST_LIBS) t.file(`lib/x86_64-linux-gnu/${lib}`, readFileSync(findLib(userRoot, lib)), 0o755);
  t.link("lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2");
  for (const m of modules) t.file(`lib/modules/${release}/${m.file}`, readFileSync(join(modulesRoot, m.file)));
  t.file("etc/husk/modules", new TextEncoder().encode(modules.map(moduleLine).join("\n") + "\n"));
  t.file("etc/passwd", new TextEncoder().encode("root:x:0:0:root:/root:/bin/sh\n"));
  t.file("etc/group", new TextEncoder().encode("root:x:0:\n"));
  if (agent) t.file("usr/bin/husk", readFileSync(agent), 0o755);
  return writeCpio(t.entries);
}

function virtiofsdFiles(vfsRoot: string, out: string): void {
  mkdirSync(join(out, "lib"), { recursive: true });
  copyFileSync(resolveIn(vfsRoot, "usr/libexec/virtiofsd"), join(out, "virtiofsd"));
  const libDir = "usr/lib/x86_64-linux-gnu";
  for (const name of readdirSync(join(vfsRoot, libDir))) {
    if (!/\.so(\.|$)/.test(name)) continue;
    const src = resolveIn(vfsRoot, join(libDir, name));
    if (statSync(src).isFile()) copyFileSync(src, join(out, "lib", name));
  }
}

// Same packages, agent, options and recipe give the same assets: a rebuild
// can be skipped before anything is extracted.
function inputsKey(debs: Deb[], agent: string, agentIn: string, kernelPkg: string): string {
  const agentSha = sha256(readFileSync(agent));
  const recipe = [initScript(kernelPkg), GUEST_MODULES, DEVICE_MODULES, GUEST_LIBS, GUEST_CMDLINE, agentIn];
  return sha256(new TextEncoder().encode(JSON.stringify([debs.map((d) => [d.name, d.version]), agentSha, recipe])));
}

function fileEntry(dir: string, path: string): ManifestFile {
  const data = readFileSync(join(dir, path));
  return { path, sha256: sha256(data), size: data.length };
}

export async function buildGuest(opts: GuestBuildOptions): Promise<GuestBuildResult> {
  const say = opts.progress ?? (() => {});
  const cacheDir = opts.cacheDir ?? join(opts.dest, ".cache");
  const agentIn = opts.agentIn ?? "share";
  const agent = opts.agentBinary ?? defaultAgent();
  if (!existsSync(agent)) throw new HuskError(`agent binary ${agent} does not exist`);
  mkdirSync(opts.dest, { recursive: true });

  const host: AptSource = { suite: "", cacheDir };
  const trixie: AptSource = { suite: RUNTIME_SUITE, cacheDir };
  say(`resolving ${KERNEL_META}`);
  const kernelPkg = dependencyOf(host, KERNEL_META, "linux-image-");
  say(`downloading packages into ${cacheDir}`);
  say(`downloading crun and virtiofsd from Debian ${RUNTIME_SUITE}`);
  const userDebs = [...downloadDebs(host, [kernelPkg, ...HOST_PKGS]), ...downloadDebs(trixie, RUNTIME_PKGS)];
  const vfsDebs = downloadDebs(trixie, VIRTIOFSD_PKGS);
  const all: Deb[] = [...userDebs, ...vfsDebs];
  const downloaded = all.filter((d) => d.downloaded).map((d) => d.name);
  const inputs = inputsKey(all, agent, agentIn, kernelPkg);
  const same = listGuestVersions(opts.dest).find((m) => m.inputs === inputs);
  if (same) return { manifest: same, dir: join(opts.dest, same.version), reused: true, downloaded };

  const work = join(opts.dest, `.build-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  try {
    say("extracting packages");
    const userRoot = join(work, "user");
    const vfsRoot = join(work, "virtiofsd");
    for (const d of userDebs) extractDeb(d, userRoot);
    for (const d of vfsDebs) extractDeb(d, vfsRoot);
    const release = kernelPkg.replace(/^linux-image-/, "");
    const out = join(work, "out");
    mkdirSync(out, { recursive: true });

    say(`decompressing kernel ${release}`);
    const bz = readFileSync(resolveIn(userRoot, `boot/vmlinuz-${release}`));
    writeFileSync(join(out, "vmlinux"), extractVmlinux(bz, `vmlinuz-${release}`));

    const modulesRoot = join(userRoot, "lib/modules", release);
    const modules = guestModules(modulesRoot);
    say(`writing initramfs (${modules.length} modules, agent in ${agentIn})`);
    writeFileSync(join(out, "initrd.cpio"), initramfs(userRoot, modulesRoot, release, modules, agentIn === "initrd" ? agent : undefined));
    if (agentIn === "share") copyFileSync(agent, join(out, "husk"));
    virtiofsdFiles(vfsRoot, join(out, "virtiofsd"));

    say("hashing");
    const files: Manifest["files"] = {
      kernel: fileEntry(out, "vmlinux"),
      initrd: fileEntry(out, "initrd.cpio"),
      agent: agentIn === "share" ? fileEntry(out, "husk") : undefined,
      virtiofsd: fileEntry(out, "virtiofsd/virtiofsd"),
      virtiofsdLibDir: "virtiofsd/lib",
    };
    const digest = sha256(new TextEncoder().encode(JSON.stringify([files, agentIn, GUEST_CMDLINE]))).slice(0, 12);
    const version = `${release}-${digest}`;
    const dir = join(opts.dest, version);
    if (existsSync(join(dir, MANIFEST_NAME))) return { manifest: readManifest(dir), dir, reused: true, downloaded };

    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      version,
      builtAt: new Date().toISOString(),
      huskVersion: VERSION,
      huskCommit: COMMIT,
      inputs,
      kernelRelease: release,
      cmdline: GUEST_CMDLINE,
      agent: agentIn,
      files,
      packages: all.map((d) => ({ name: d.name, version: d.version })),
      modules: modules.map((m) => m.name),
    };
    writeFileSync(join(out, MANIFEST_NAME), JSON.stringify(manifest, null, 2) + "\n");
    try {
      renameSync(out, dir); // the version appears whole or not at all
    } catch (e) {
      // A concurrent build of the same content got there first.
      if (existsSync(join(dir, MANIFEST_NAME))) return { manifest: readManifest(dir), dir, reused: true, downloaded };
      throw new HuskError(`cannot move guest assets into ${dir}: ${(e as Error).message}`);
    }
    return { manifest, dir, reused: false, downloaded };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
