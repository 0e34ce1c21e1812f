import { copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultSpec, type Spec } from "../../lib/oci/index.ts";

// A minimal OCI bundle around busybox-static, for any test that runs a
// container. Needs /bin/busybox (Debian's busybox-static; .ci/setup installs it).

export const BUSYBOX = "/bin/busybox";

export const APPLETS = [
  "sh", "echo", "cat", "sleep", "ls", "uname", "id", "tty", "ps", "true", "false", "env", "pwd",
  "hostname", "touch", "mkdir", "rm", "grep", "head", "wc", "kill", "readlink", "stty", "dd", "du", "stat",
];

export interface BundleOptions {
  args: string[];
  env?: string[];
  cwd?: string;
  terminal?: boolean;
}

// Populates dir/rootfs with busybox and its applets, /etc/passwd and /etc/group.
export function makeBusyboxRootfs(rootfs: string): string {
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: install busybox-static (bash .ci/setup)`);
  for (const d of ["bin", "etc", "proc", "sys", "dev", "tmp", "root"]) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(BUSYBOX, join(rootfs, "bin", "busybox"));
  for (const a of APPLETS) {
    const link = join(rootfs, "bin", a);
    if (!existsSync(link)) symlinkSync("busybox", link);
  }
  writeFileSync(join(rootfs, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n");
  writeFileSync(join(rootfs, "etc", "group"), "root:x:0:\nnogroup:x:65534:\n");
  return rootfs;
}

// The runtime-spec default (namespaces pid, network, ipc, uts, mount; no user
// namespace) with a writable root and the given process. runc 1.1.5 accepts
// it on this cgroup v1/hybrid host without a cgroupsPath or resources.
export function busyboxSpec(opts: BundleOptions, rootPath = "rootfs"): Spec {
  const spec = defaultSpec();
  const process = spec.process!;
  return {
    ...spec,
    hostname: "busybox",
    root: { path: rootPath, readonly: false },
    process: {
      ...process,
      args: opts.args,
      env: opts.env ?? process.env,
      cwd: opts.cwd ?? "/",
      terminal: opts.terminal ?? false,
    },
  };
}

export function makeBusyboxBundle(dir: string, opts: BundleOptions): string {
  mkdirSync(dir, { recursive: true });
  makeBusyboxRootfs(join(dir, "rootfs"));
  writeFileSync(join(dir, "config.json"), JSON.stringify(busyboxSpec(opts), null, 2));
  return dir;
}
