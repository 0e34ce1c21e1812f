import { closeSync, openSync, readSync } from "node:fs";

// Reads a file (or stdin, fd 0) whole, but never more than max bytes: an
// endless or huge input is refused once it passes the bound, not buffered.
export function readBounded(path: string | 0, max: number): string {
  const fd = path === 0 ? 0 : openSync(path, "r");
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for (;;) {
      const buf = Buffer.alloc(64 * 1024);
      const n = readSome(fd, buf);
      if (n === 0) break;
      total += n;
      if (total > max) throw new Error(`over the limit of ${max} bytes`);
      chunks.push(buf.subarray(0, n));
    }
  } finally {
    if (fd !== 0) closeSync(fd);
  }
  return Buffer.concat(chunks).toString("utf8");
}

// A non-blocking stdin (a pipe its writer made so) says EAGAIN until data comes.
function readSome(fd: number, buf: Buffer): number {
  for (;;) {
    try {
      return readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") throw e;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}
