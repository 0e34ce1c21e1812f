import { join } from "node:path";
import { HuskError } from "../core/index.ts";
import { GUEST_SHARE_TAG, readManifest, type GuestAssets } from "../guest/index.ts";
import type { VirtiofsdRecord } from "../persist/index.ts";
import { isDirectory, socketExists, spawnDetached, stopProcess, waitUntil } from "./process.ts";
import { findExecutable } from "./select.ts";

// The one virtiofsd launcher every VM driver uses: it serves the sandbox's
// shared directory (rootfs and bind sources) to the guest over vhost-user.

const START_TIMEOUT_MS = 10_000;

// virtiofsd comes from settings.virtiofsdPath, else the copy bundled with the
// guest assets (Debian trixie's, run through its own ld-linux and libraries so
// the host's older glibc does not matter), else the host's.
export function virtiofsdCommand(assets: GuestAssets | undefined, configured?: string): string[] {
  if (configured) {
    if (!findExecutable(configured)) throw new HuskError(`virtiofsd ${configured} (settings virtiofsd.path / HUSK_VIRTIOFSD) does not exist`);
    return [configured];
  }
  const m = assets && readManifest(assets.dir);
  if (assets && m?.files.virtiofsd && m.files.virtiofsdLibDir) {
    const lib = join(assets.dir, m.files.virtiofsdLibDir);
    return [join(lib, "ld-linux-x86-64.so.2"), "--library-path", lib, join(assets.dir, m.files.virtiofsd.path)];
  }
  const host = findExecutable("/usr/libexec/virtiofsd") ?? findExecutable("virtiofsd");
  if (host) return [host];
  const where = assets ? `guest assets ${assets.version} bundle none and none is installed; rebuild them with 'husk guest build' or` : "none is installed;";
  throw new HuskError(`no virtiofsd: ${where} set HUSK_VIRTIOFSD`);
}

export interface VirtiofsdSpec {
  command: string[];
  socket: string;
  sharedDir: string;
  logPath: string;
  // Host files shown read-only at paths in the share, to virtiofsd alone.
  bindFiles?: { source: string; target: string }[];
}

// The binds are made in a mount namespace of virtiofsd's own, a slave of the
// host's so that container mounts made later still reach it: the host keeps
// only empty placeholders (any release can delete the share), every guest
// reads the one host file through the page cache, and none can write it.
const BIND_THEN_EXEC = 'while [ "$1" != -- ]; do mount --bind -o ro "$1" "$2" || exit 1; shift 2; done; shift; exec "$@"';

function withBinds(command: string[], binds: VirtiofsdSpec["bindFiles"]): string[] {
  if (!binds?.length) return command;
  const pairs = binds.flatMap((b) => [b.source, b.target]);
  return ["unshare", "--mount", "--propagation", "slave", "--", "sh", "-c", BIND_THEN_EXEC, "sh", ...pairs, "--", ...command];
}

// Started and listening; the record goes into the driver's VM record.
export async function startVirtiofsd(s: VirtiofsdSpec): Promise<VirtiofsdRecord> {
  if (!isDirectory(s.sharedDir)) throw new HuskError(`shared directory ${s.sharedDir} does not exist`);
  const [bin, ...pre] = withBinds(s.command, s.bindFiles) as [string, ...string[]];
  const args = [...pre, `--socket-path=${s.socket}`, `--shared-dir=${s.sharedDir}`, "--cache=auto", "--announce-submounts"];
  const process = spawnDetached(bin, args, s.logPath);
  const record = { process, socket: s.socket, sharedDir: s.sharedDir, tag: GUEST_SHARE_TAG };
  try {
    await waitUntil(socketExists(s.socket), process, `virtiofsd (${bin})`, s.logPath, START_TIMEOUT_MS);
  } catch (e) {
    await stopVirtiofsd(record);
    throw e;
  }
  return record;
}

// virtiofsd leaves once the VMM hangs up; the signal is the fallback.
export async function stopVirtiofsd(r: VirtiofsdRecord | undefined): Promise<void> {
  if (!r) return;
  await stopProcess(r.process, async () => {}, 500);
}
