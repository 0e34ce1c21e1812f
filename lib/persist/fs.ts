import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmdirSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { errorMessage, errorReason } from "../core/index.ts";
import type { Backend } from "./backend.ts";
import { LOCK_FILE } from "./backend.ts";
import { MAX_DOC_BYTES } from "./codec.ts";
import { PersistError, type Origin } from "./errors.ts";

export const DOC_FILE = "persist.json";
const TMP_PREFIX = `.${DOC_FILE}.`;

const code = (e: unknown) => (e as NodeJS.ErrnoException)?.code;
let tmpCounter = 0;

// <root>/<id>/persist.json, replaced by rename; the directory also holds the
// lock file and whatever the sandbox keeps beside it (sockets, logs).
export class FsBackend implements Backend {
  readonly kind = "fs" as const;
  constructor(readonly root: string) {}

  private origin(id: string): Origin {
    const path = join(this.root, id, DOC_FILE);
    return { sandboxId: id, where: path, path };
  }

  read(id: string) {
    const origin = this.origin(id);
    const unsafe = (why: string) =>
      new PersistError("unsafe-path", `${origin.where} (sandbox ${id}) ${why}; husk does not follow it`, id, origin.path);
    let fd: number;
    try {
      if (!lstatSync(join(this.root, id)).isDirectory()) throw unsafe("is inside something that is not a directory");
      // O_NONBLOCK: a FIFO planted here must not hang us.
      fd = openSync(origin.path!, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (e) {
      if (e instanceof PersistError) throw e;
      if (code(e) === "ENOENT" || code(e) === "ENOTDIR") return undefined;
      if (code(e) === "ELOOP") throw unsafe("is a symbolic link");
      throw new PersistError("io", `cannot open ${origin.where} (sandbox ${id}): ${errorMessage(e)}`, id, origin.path);
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw unsafe("is not a regular file");
      if (st.size > MAX_DOC_BYTES)
        throw new PersistError(
          "too-large",
          `${origin.where} (sandbox ${id}) is ${st.size} bytes, over the ${MAX_DOC_BYTES}-byte limit for a ` +
            `persist document; it was not read and was left as it is`,
          id,
          origin.path,
        );
      return { text: readAll(fd, st.size).toString("utf8"), origin };
    } finally {
      closeSync(fd);
    }
  }

  write(id: string, text: string): void {
    const dir = join(this.root, id);
    const created = mkdirSync(dir, { recursive: true, mode: 0o700 }) !== undefined;
    if (created) fsyncPath(this.root); // the new directory entry must survive a crash too
    const tmp = join(dir, `${TMP_PREFIX}${process.pid}.${++tmpCounter}.tmp`);
    const bytes = Buffer.from(text);
    try {
      const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, join(dir, DOC_FILE));
    } catch (e) {
      removeQuietly(tmp);
      throw new PersistError("io", `cannot write ${join(dir, DOC_FILE)} (sandbox ${id}): ${errorReason(e)}`, id, join(dir, DOC_FILE), e);
    }
    fsyncPath(dir);
  }

  list(): string[] {
    let entries;
    try {
      entries = readdirSync(this.root, { withFileTypes: true });
    } catch (e) {
      if (code(e) === "ENOENT") return [];
      throw new PersistError("io", `cannot list ${this.root}: ${errorMessage(e)}`);
    }
    return entries
      .filter((e) => e.isDirectory() && exists(join(this.root, e.name, DOC_FILE)))
      .map((e) => e.name)
      .sort();
  }

  // The document, temp files of crashed writers and the lock file; the
  // directory too once nothing else is left in it.
  remove(id: string): void {
    const dir = join(this.root, id);
    removeQuietly(join(dir, DOC_FILE));
    try {
      fsyncPath(dir);
    } catch {}
    sweepTempFiles(dir, () => true);
    removeQuietly(join(dir, LOCK_FILE));
    try {
      rmdirSync(dir);
    } catch {}
  }

  close(): void {}
}

// Temp files left by writers that were killed mid-save; `isStale(pid)` decides.
export function sweepTempFiles(dir: string, isStale: (pid: number) => boolean): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(TMP_PREFIX) || !name.endsWith(".tmp")) continue;
    const pid = Number.parseInt(name.slice(TMP_PREFIX.length), 10);
    if (isStale(pid)) removeQuietly(join(dir, name));
  }
}

function readAll(fd: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  while (off < size) {
    const n = readSync(fd, buf, off, size - off, off);
    if (n === 0) break;
    off += n;
  }
  return buf.subarray(0, off);
}

function fsyncPath(path: string): void {
  const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {}
}
