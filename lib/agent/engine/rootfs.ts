import { chmodSync, chownSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode, HuskError, errorMessage } from "../../core/index.ts";
import { SysError, mountFs, unmount } from "../../sys/index.ts";
import type { Rootfs } from "./types.ts";

// The container's root directory: an overlay of a read-only lower, typically
// on the VM's shared filesystem, under a private tmpfs that holds the upper
// and work directories, so writes stay inside the sandbox. Mounted in the
// agent's own mount namespace (the one runc starts containers from).

export interface PreparedRootfs {
  path: string;
  release(): Promise<void>; // idempotent
}

// A failed mount(2) or umount(2), worded without its errno number.
function mountError(e: unknown): HuskError {
  const what = e instanceof SysError ? `${e.call}: ${e.reason}` : errorMessage(e);
  return new HuskError(`cannot prepare the container's root: ${what}`, { code: ErrorCode.Internal });
}

function requireDir(path: string, what: string): void {
  let ok = false;
  try {
    ok = statSync(path).isDirectory();
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
    throw new HuskError(`${what} ${path}: ${errorMessage(e)}`, { code: missing ? ErrorCode.NotFound : ErrorCode.Internal });
  }
  if (!ok) throw new HuskError(`${what} ${path} is not a directory`, { code: ErrorCode.InvalidArgument });
}

// Mount points under dir, deepest first (from our mount namespace's table).
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  let table = "";
  try {
    table = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return [];
  }
  return table
    .split("\n")
    .map((line) => line.split(" ")[4] ?? "")
    .map((p) => p.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}

export async function unmountUnder(dir: string): Promise<void> {
  for (const m of mountsUnder(dir)) {
    try {
      unmount(m);
    } catch {
      try {
        unmount(m, true); // busy: detach now, freed when the last user goes
      } catch (e) {
        throw mountError(e);
      }
    }
  }
}

const FORBIDDEN_IN_LOWER = /[:,\\\n]/;

async function mountOverlay(lower: string[], tmpfsSize: string | undefined, dir: string): Promise<string> {
  for (const l of lower) {
    if (FORBIDDEN_IN_LOWER.test(l))
      throw new HuskError(`overlay lower ${JSON.stringify(l)}: ':', ',' and '\\' are not allowed in the path`, {
        code: ErrorCode.InvalidArgument,
      });
    requireDir(l, "overlay lower");
  }
  const scratch = join(dir, "scratch");
  const root = join(dir, "rootfs");
  mkdirSync(scratch, { recursive: true });
  mkdirSync(root, { recursive: true });
  try {
    mountFs("tmpfs", "husk-scratch", scratch, `mode=0755${tmpfsSize ? `,size=${tmpfsSize}` : ""}`);
  } catch (e) {
    throw mountError(e);
  }
  try {
    mkdirSync(join(scratch, "upper"), { mode: 0o755 });
    mkdirSync(join(scratch, "work"), { mode: 0o755 });
    sameOwnerAndMode(lower[0]!, join(scratch, "upper"));
    const opts = `lowerdir=${lower.join(":")},upperdir=${scratch}/upper,workdir=${scratch}/work`;
    mountFs("overlay", "husk-rootfs", root, opts);
  } catch (e) {
    await unmountUnder(dir);
    throw e instanceof SysError ? mountError(e) : e;
  }
  return root;
}

// The overlay's root takes the upper directory's owner and mode: it must be
// the image's root's, or a container in a user namespace (the image chowned
// to its mapped ids, as podman --uidmap does) could not create in "/".
function sameOwnerAndMode(from: string, to: string): void {
  const st = statSync(from);
  chownSync(to, st.uid, st.gid);
  chmodSync(to, st.mode & 0o7777);
}

export async function prepareRootfs(rootfs: Rootfs, dir: string): Promise<PreparedRootfs> {
  if (rootfs.kind === "path") {
    requireDir(rootfs.path, "rootfs");
    return { path: rootfs.path, release: async () => {} };
  }
  const lower = Array.isArray(rootfs.lower) ? rootfs.lower : [rootfs.lower];
  const path = await mountOverlay(lower, rootfs.tmpfsSize, dir);
  let released = false;
  return {
    path,
    release: async () => {
      if (released) return;
      await unmountUnder(dir);
      released = true;
      rmSync(join(dir, "rootfs"), { recursive: true, force: true });
      rmSync(join(dir, "scratch"), { recursive: true, force: true });
    },
  };
}
