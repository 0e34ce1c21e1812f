import { existsSync, lstatSync, mkdirSync, readlinkSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import type { Context } from "./context.ts";

// Unix socket paths are limited to 107 bytes, and containerd's root plus a
// 64-character container id already comes close. Sockets (agent, proxy, VMM,
// virtiofsd) are therefore made through a short alias of the sandbox
// directory when its own path is too long. The alias is derived from the
// path, so teardown finds it without a record.
const LONGEST_SOCKET_NAME = "virtiofs.sock";
const ALIAS_BASE = existsSync("/run") ? "/run/husk-s" : "/tmp/husk-s";

const aliasOf = (dir: string) =>
  join(ALIAS_BASE, new Bun.CryptoHasher("sha256").update(dir).digest("hex").slice(0, 16));

const tooLong = (dir: string) => Buffer.byteLength(join(dir, LONGEST_SOCKET_NAME)) > 100;

// The directory to build socket paths in: the sandbox directory, or its alias.
export function socketDir(ctx: Context, sandboxId: string): string {
  const dir = ctx.store.sandboxDir(sandboxId);
  if (!tooLong(dir)) return dir;
  const alias = aliasOf(dir);
  mkdirSync(ALIAS_BASE, { recursive: true, mode: 0o700 });
  if (!isLinkTo(alias, dir)) {
    rmSync(alias, { force: true });
    symlinkSync(dir, alias);
  }
  return alias;
}

function isLinkTo(alias: string, dir: string): boolean {
  try {
    return lstatSync(alias).isSymbolicLink() && readlinkSync(alias) === dir;
  } catch {
    return false;
  }
}

export function removeSocketDirAlias(ctx: Context, sandboxId: string): void {
  const dir = ctx.store.sandboxDir(sandboxId);
  if (tooLong(dir) && isLinkTo(aliasOf(dir), dir)) rmSync(aliasOf(dir), { force: true });
}
