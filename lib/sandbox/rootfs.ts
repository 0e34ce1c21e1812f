import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ErrorCode, HuskError } from "../core/index.ts";
import { GUEST_NETNS, GUEST_SHARE_MOUNT } from "../guest/index.ts";
import type { Bundle, Spec } from "../oci/index.ts";
import { featuresOf } from "../hypervisor/index.ts";
import type { SandboxDoc } from "../persist/index.ts";
import { withoutHostHooks } from "./hooks.ts";
import type { RootfsSchema } from "../protocol/index.ts";
import { removeTree, unmountUnder } from "./mounts.ts";
import { isSharedMount } from "./share-layout.ts";

export type RootfsInit = MessageInitShape<typeof RootfsSchema>;

export interface GuestView {
  rootfs: RootfsInit;
  spec: Spec; // the bundle's spec with host paths replaced by guest paths
}

// Collision-free and derivable from the id alone, so teardown needs no
// record; a container restored under another id keeps the name its guest
// knows (shareName in its record).
export const shareNameOf = (containerId: string) =>
  `c-${new Bun.CryptoHasher("sha256").update(containerId).digest("hex").slice(0, 32)}`;
const shareName = (doc: SandboxDoc, containerId: string) =>
  doc.containers.find((c) => c.id === containerId)?.shareName ?? shareNameOf(containerId);

function run(cmd: string[]): void {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: "utf8" });
  if (r.status !== 0) throw new HuskError(`${cmd.join(" ")}: ${(r.stderr || "").trim() || `exit ${r.status}`}`);
}

// A bind of a host path into the sandbox's shared directory (read-only
// unless asked); recursive when the container asked for rbind, so the mounts
// under the source reach the guest too (virtiofsd announces them).
function bindShared(src: string, dest: string, opts: { writable?: boolean; recursive?: boolean } = {}): void {
  if (statSync(src).isDirectory()) mkdirSync(dest, { recursive: true });
  else if (!existsSync(dest)) writeFileSync(dest, "");
  run(["mount", opts.recursive ? "--rbind" : "--bind", src, dest]);
  // The copies of the source's submounts would be peers of the originals:
  // unmounting them at teardown must never unmount the user's.
  if (opts.recursive) run(["mount", "--make-rslave", dest]);
  if (!opts.writable) run(["mount", "-o", "remount,bind,ro", dest]);
}

// How the agent reaches a container's files. Without a shared directory (the
// local driver) the agent runs on the host and uses the bundle as it is. In a VM the rootfs is bound read-only
// into the virtio-fs share and becomes the lower layer of an overlay whose
// upper is a guest tmpfs, so the container's writes never reach the host;
// host paths of bind mounts (podman's /etc/hosts, ...) are shared the same way.
export function guestView(
  doc: SandboxDoc,
  containerId: string,
  bundle: Bundle,
  sharedFs = !!doc.vm && featuresOf(doc.vm.driver).sharedFs,
  slots?: Map<number, number>, // bundle mount index -> share slot (a restore's); default: the index
): GuestView {
  const readonly = bundle.spec.root?.readonly === true;
  const linux = bundle.spec.linux && joinedNamespaces(doc, bundle.spec.linux, sharedFs);
  if (!sharedFs || !doc.config.sharedDir)
    return { rootfs: { source: { case: "path", value: bundle.rootfs }, readonly }, spec: { ...withoutHostHooks(bundle.spec), ...(linux ? { linux } : {}) } };
  const name = shareName(doc, containerId);
  const hostDir = join(doc.config.sharedDir, name);
  const guestDir = `${GUEST_SHARE_MOUNT}/${name}`;
  mkdirSync(join(hostDir, "mounts"), { recursive: true });
  bindShared(bundle.rootfs, join(hostDir, "rootfs"));
  const mounts = (bundle.spec.mounts ?? []).map((m, i) => {
    const slot = slots ? slots.get(i) : i;
    if (slot === undefined || !isSharedMount(m)) return m;
    const options = m.options ?? [];
    bindShared(m.source!, join(hostDir, "mounts", String(slot)), { writable: !options.includes("ro"), recursive: options.includes("rbind") });
    return { ...m, source: `${guestDir}/mounts/${slot}` };
  });
  return {
    rootfs: { source: { case: "overlay", value: { lowerDirs: [`${guestDir}/rootfs`] } }, readonly },
    // The host's hooks run on the host (hooks.ts); the guest's runc gets the rest.
    spec: { ...withoutHostHooks(bundle.spec), mounts, ...(linux ? { linux } : {}) },
  };
}

export const PROC_NS = /^\/proc\/(\d+)\/ns\/([a-z_]+)$/;

// A namespace path naming a container of this sandbox (CRI names the pod
// sandbox container by the pid husk published: its shim's) is that
// container's namespace: translated to its init as the agent sees it (in a
// VM, the guest's). Any other path names a namespace of the host, which a VM
// cannot join (its network is carried in instead, below); without a
// VM, runc joins it as it would.
function joinedNamespaces(doc: SandboxDoc, linux: NonNullable<Spec["linux"]>, vm: boolean): NonNullable<Spec["linux"]> {
  if (!linux.namespaces) return linux;
  const namespaces = linux.namespaces.map((n) => {
    if (!n.path) return n;
    const m = PROC_NS.exec(n.path);
    const owner = m && doc.containers.find((c) => c.pid === Number(m[1]) && c.initPid);
    if (owner) return { ...n, path: `/proc/${owner.initPid}/ns/${m![2]}` };
    if (!vm) return n;
    // The host's network is carried into the VM (lib/network): the container
    // joins the guest's namespace that holds it, by path, so that crun
    // applies net.* sysctls there as runc would in the original.
    if (n.type === "network") return { ...n, path: GUEST_NETNS };
    throw new HuskError(
      `cannot join host namespace ${n.path} (${n.type}) from a VM sandbox: only the namespaces of the sandbox's own containers can be joined`,
      { code: ErrorCode.FailedPrecondition },
    );
  });
  return { ...linux, namespaces };
}

// Undoes a container's shares; already-gone mounts are not an error. Nothing
// is removed while a mount is left.
export function unshareContainer(doc: SandboxDoc, containerId: string): void {
  if (!doc.config.sharedDir) return;
  const dir = join(doc.config.sharedDir, shareName(doc, containerId));
  unmountUnder(dir);
  removeTree(dir);
}

// Undoes every share of a sandbox before its directory is removed.
export function unshareAll(sandboxDir: string): void {
  unmountUnder(sandboxDir);
}
