import { writeSync } from "node:fs";

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
