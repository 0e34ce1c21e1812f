import { createHash } from "node:crypto";
import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { REPO } from "./tree.ts";

export interface BinaryInfo {
  version: string;
  commit: string;
  persistReads: string[]; // semver-like ranges of persist formats, e.g. ">=1.0 <2.0"
  gcAssets: boolean; // knows `husk gc --assets`
}

export interface ControlOptions {
  info: BinaryInfo;
  version: string;
  layout: number;
  conffiles: string[];
}

// Only Debian packages: the binary needs glibc (it asks for GLIBC_2.17 at
// most) and mount(8) for the shims (shim-view.ts); a VMM, runc (the local driver) and iproute2 (networks) are wanted, not required.
function control(o: ControlOptions, installedKiB: number): string {
  return [
    "Package: husk",
    `Version: ${o.version}`,
    "Architecture: amd64",
    "Maintainer: husk maintainers <husk@localhost>",
    `Installed-Size: ${installedKiB}`,
    "Depends: libc6 (>= 2.17), mount",
    "Recommends: qemu-system-x86 | cloud-hypervisor, runc, iproute2",
    "Suggests: podman | containerd",
    "Section: admin",
    "Priority: optional",
    `X-Husk-Layout: ${o.layout}`,
    `X-Husk-Commit: ${o.info.commit}`,
    "Description: OCI container runtime that runs each pod in its own micro-VM",
    " husk is called by podman and containerd like runc. Each sandbox is a QEMU",
    " or cloud-hypervisor micro-VM booted from the guest assets this package",
    " installs (kernel, initramfs, agent, virtiofsd): no network is needed to",
    " install or run it. Upgrading the package leaves running sandboxes on the",
    " binary and assets they started with.",
    "",
  ].join("\n");
}

// The newest persist major any of the ranges reads: "<2.0" → 1, "<2.3" → 2.
export function newestMajor(ranges: string[]): number {
  let best = 0;
  for (const r of ranges) {
    const m = /<\s*(\d+)\.(\d+)/.exec(r);
    if (m) best = Math.max(best, Number(m[2]) === 0 ? Number(m[1]) - 1 : Number(m[1]));
  }
  return best;
}

function files(dir: string, root: string): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const p = join(dir, name);
    if (relative(root, p) === "DEBIAN") return [];
    const st = lstatSync(p);
    return st.isDirectory() ? files(p, root) : st.isFile() ? [p] : [];
  });
}

function script(name: string, o: ControlOptions): string {
  const common = readFileSync(join(REPO, "packaging/debian/common.sh"), "utf8").trimEnd();
  const gc = o.info.gcAssets
    ? `# Asset versions no sandbox booted go; what running sandboxes booted stays.\n    /usr/bin/husk gc --assets || echo "husk: warning: 'husk gc --assets' failed; older guest assets stay in $GUEST" >&2`
    : `# This husk has no 'husk gc --assets': older asset versions stay in $GUEST.\n    :`;
  return readFileSync(join(REPO, "packaging/debian", name), "utf8")
    .replace("@COMMON@", common)
    .replaceAll("@LAYOUT@", String(o.layout))
    .replaceAll("@VERSION@", o.version)
    .replaceAll("@READS_MAJOR@", String(newestMajor(o.info.persistReads)))
    .replaceAll("@READS@", o.info.persistReads.join(", "))
    .replace("@GC_ASSETS@", gc);
}

export function controlFiles(root: string, o: ControlOptions): void {
  const debian = join(root, "DEBIAN");
  mkdirSync(debian, { recursive: true });
  const payload = files(root, root);
  const kib = Math.ceil(payload.reduce((n, p) => n + lstatSync(p).size, 0) / 1024);
  writeFileSync(join(debian, "control"), control(o, kib));
  writeFileSync(join(debian, "conffiles"), o.conffiles.join("\n") + "\n");
  const sums = payload.filter((p) => !o.conffiles.includes(`/${relative(root, p)}`));
  writeFileSync(join(debian, "md5sums"), sums.map((p) => `${createHash("md5").update(readFileSync(p)).digest("hex")}  ${relative(root, p)}\n`).join(""));
  for (const name of ["preinst", "postinst", "postrm"]) writeFileSync(join(debian, name), script(name, o), { mode: 0o755 });
}
