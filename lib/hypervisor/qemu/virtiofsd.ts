import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import { join } from "node:path";
import { HuskError } from "../../core/index.ts";
import { readManifest } from "../../guest/index.ts";
import { findExecutable } from "../select.ts";
import type { GuestAssets } from "../types.ts";

// virtiofsd comes from settings.virtiofsdPath, else the copy bundled with the
// guest assets (Debian trixie's, run through its own ld-linux and libraries so
// the host's older glibc does not matter), else the host's.
export function virtiofsdCommand(assets: GuestAssets, configured?: string): string[] {
  if (configured) {
    if (!findExecutable(configured)) throw new HuskError(`virtiofsd ${configured} (settings virtiofsd.path / HUSK_VIRTIOFSD) does not exist`);
    return [configured];
  }
  const m = readManifest(assets.dir);
  if (m.files.virtiofsd && m.files.virtiofsdLibDir) {
    const lib = join(assets.dir, m.files.virtiofsdLibDir);
    return [join(lib, "ld-linux-x86-64.so.2"), "--library-path", lib, join(assets.dir, m.files.virtiofsd.path)];
  }
  const host = findExecutable("/usr/libexec/virtiofsd") ?? findExecutable("virtiofsd");
  if (host) return [host];
  throw new HuskError(`no virtiofsd: guest assets ${assets.version} bundle none and none is installed; rebuild them with 'husk guest build' or set HUSK_VIRTIOFSD`);
}

export function spawnVirtiofsd(cmd: string[], socket: string, sharedDir: string, logPath: string): number {
  if (!existsSync(sharedDir)) throw new HuskError(`shared directory ${sharedDir} does not exist`);
  const log = openSync(logPath, "a");
  const args = [...cmd.slice(1), `--socket-path=${socket}`, `--shared-dir=${sharedDir}`, "--cache=auto", "--announce-submounts"];
  const child = spawn(cmd[0]!, args, { detached: true, stdio: ["ignore", log, log] });
  closeSync(log);
  child.on("exit", () => {}); // reaped while we run, so no zombie outlives stop()
  child.unref();
  if (!child.pid) throw new HuskError(`cannot start virtiofsd ${cmd[0]}`);
  return child.pid;
}
