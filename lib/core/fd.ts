import { mkdirSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { dirname } from "node:path";

// Writes all of data to fd, riding out a non-blocking pipe being full. A
// reader that went away (EPIPE and the like) drops the rest: output nobody
// reads is not an error of ours.
export function writeFully(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") return;
      Bun.sleepSync(1);
    }
  }
}

// A cache file written whole or not at all (a reader never sees half of
// one). One that cannot be written only costs its answer again: false.
export function keepCacheFile(path: string, text: string): boolean {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(tmp, text);
    renameSync(tmp, path);
    return true;
  } catch {
    rmSync(tmp, { force: true });
    return false;
  }
}
