import { mkdirSync } from "node:fs";
import { join, posix, resolve } from "node:path";
import { HuskError } from "../core/index.ts";
import { findExecutable } from "../hypervisor/index.ts";
import type { Bundle, MountSpec } from "../oci/index.ts";
import { isSharedMount } from "./share-layout.ts";

// podman takes the shim's pid for the container's, and `podman cp` (and
// `podman top`) enter the mount namespace of /proc/<pid>/ns/mnt and work
// from its root. The shim runs on the host, so that would be the host's own
// root: `podman cp f C:/etc/passwd` would overwrite the host's. The shim
// therefore starts in a mount namespace of its own whose root, for whoever
// enters it, holds only what the host shares with the container: its bind
// mounts (volumes, /etc/hosts, ...) over an empty read-only tmpfs. The
// container's own files live in its VM (or its runtime's overlay) and are
// not there. The shim itself keeps the host's root: a mount stacked on "/"
// is seen only by a process that enters the namespace afresh.
//
// The script runs as root under unshare(1), before the shim's exec: Bun is
// multi-threaded by then, and a multi-threaded process cannot unshare its
// mount namespace. Propagation is slave, so nothing mounted here reaches
// the host, and the host's unmounts still reach here.
const SCRIPT = `set -e
view=$1; n=$2; shift 2
mount -t tmpfs -o mode=0755,size=1m husk-view "$view"
bind() {
  if [ -d "$1" ]; then mkdir -p "$2"; else mkdir -p "$(dirname "$2")" && { [ -e "$2" ] || : > "$2"; }; fi &&
    mount "--\${3%,*}" "$1" "$2" && { [ "\${3#*,}" = rw ] || mount -o remount,bind,ro "$2"; }
}
while [ "$n" -gt 0 ]; do
  bind "$1" "$2" "$3" 2>/dev/null || :
  shift 3; n=$((n - 1))
done
mount -o remount,bind,ro "$view"
mount --rbind "$view" /
exec "$@"`;

export interface ViewSource {
  mounts?: MountSpec[];
  bundleDir: string;
}

export const viewOf = (bundle: Bundle): ViewSource => ({ mounts: bundle.spec.mounts, bundleDir: bundle.path });

// Each shared bind as [source, destination under the view, "bind|rbind,rw|ro"].
function bindArgs(view: string, src: ViewSource): string[] {
  return (src.mounts ?? []).filter(isSharedMount).flatMap((m) => {
    const opts = m.options ?? [];
    const how = `${opts.includes("rbind") ? "rbind" : "bind"},${opts.includes("ro") ? "ro" : "rw"}`;
    // normalize keeps ".." in a destination from leaving the view; a bind
    // over the view's own root is not made (the view stays the tmpfs).
    const dst = posix.normalize(`/${m.destination}`);
    return dst === "/" ? [] : [resolve(src.bundleDir, m.source!), join(view, dst), how];
  });
}

// The command that starts `cmd` (the shim) in its own mount namespace with
// that root. Only root can make one; anyone else's shim exposes no more
// than they own, and starts as it is.
export function inContainerView(sandboxDir: string, src: ViewSource, cmd: string[]): string[] {
  if (process.getuid?.() !== 0) return cmd;
  const unshare = findExecutable("unshare");
  if (!unshare || !findExecutable("mount"))
    throw new HuskError("cannot start a container's shim: unshare(8) and mount(8) (util-linux, mount) are not installed");
  const view = join(sandboxDir, "view");
  mkdirSync(view, { recursive: true, mode: 0o700 });
  const binds = bindArgs(view, src);
  return [unshare, "--mount", "--propagation", "slave", "/bin/sh", "-c", SCRIPT, "husk-view", view, String(binds.length / 3), ...binds, ...cmd];
}
