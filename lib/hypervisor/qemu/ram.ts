import { closeSync, fstatSync, ftruncateSync, openSync, readSync, readdirSync, readlinkSync, writeSync } from "node:fs";
import { HuskError } from "../../core/index.ts";
import { dataSegments, memoryFile } from "../../sys/index.ts";

// Guest RAM is a memory file (memfd) husk makes and hands to QEMU, which maps
// it shared as a file backend (virtiofsd maps it too). A file QEMU was given
// by name is one its migration can leave out (x-ignore-shared; its own memfd
// backend would still be sent). So a VM template keeps its RAM in a sparse
// file of its own (RAM_FILE), and a VM restored from it gets a memory file
// filled from it, a host-speed copy of the pages the template touched (~60 ms
// for ~120 MB here), where QEMU loading them from a mapped-ram stream took ~320 ms.

export const RAM_FILE = "vm.ram";
// The name a restored VM's memory file shows in /proc/PID/maps.
const RAM_NAME = "husk-guest-ram";
// QEMU opens it as /proc/self/fd/3 (the fd it inherits there).
export const GUEST_RAM_PATH = "/proc/self/fd/3";
const GUEST_RAM_LINK = `/memfd:${RAM_NAME} (deleted)`;
const CHUNK = 4 << 20;

const PAGE = 4096;
const ZERO_PAGE = Buffer.alloc(PAGE);
const isZeroPage = (buf: Buffer, at: number) => buf.compare(ZERO_PAGE, 0, PAGE, at, at + PAGE) === 0;

// Writes buf[0, n) at `offset`, all but its zero pages: a page the guest
// touched and left zero stays a hole (~40 of ~150 MB in a template).
function writeNonZero(to: number, buf: Buffer, n: number, offset: number): void {
  for (let p = 0; p < n; ) {
    if (n - p >= PAGE && isZeroPage(buf, p)) {
      p += PAGE;
      continue;
    }
    let end = p + PAGE;
    while (end + PAGE <= n && !isZeroPage(buf, end)) end += PAGE;
    end = Math.min(end, n);
    writeSync(to, buf, p, end - p, offset + p);
    p = end;
  }
}

// Copies what `from` holds at the offsets it holds it; holes stay holes.
function copyData(from: number, to: number, size: number): void {
  const buf = Buffer.allocUnsafe(CHUNK);
  for (const [start, length] of dataSegments(from, size)) {
    for (let at = start; at < start + length; ) {
      const n = readSync(from, buf, 0, Math.min(CHUNK, start + length - at), at);
      if (n <= 0) throw new HuskError(`guest RAM ended at byte ${at}, before its recorded size ${size}`);
      writeNonZero(to, buf, n, at);
      at += n;
    }
  }
}

function guestRamOf(qemuPid: number): string {
  const dir = `/proc/${qemuPid}/fd`;
  for (const n of readdirSync(dir)) {
    try {
      if (readlinkSync(`${dir}/${n}`) === GUEST_RAM_LINK) return `${dir}/${n}`;
    } catch {} // closed meanwhile
  }
  throw new HuskError(`QEMU (pid ${qemuPid}) holds no memory file for its guest RAM`);
}

// Copies `src` into the target `open` makes for its size; returns the target, open.
function copyFile(src: string, open: (size: number) => number): number {
  const from = openSync(src, "r");
  try {
    const size = fstatSync(from).size;
    const to = open(size);
    try {
      copyData(from, to, size);
    } catch (e) {
      closeSync(to);
      throw e;
    }
    return to;
  } finally {
    closeSync(from);
  }
}

// The guest RAM of a paused QEMU, written to `dest` (a new file).
export function saveRam(qemuPid: number, dest: string): void {
  const newFile = (size: number) => {
    const fd = openSync(dest, "wx", 0o600);
    ftruncateSync(fd, size);
    return fd;
  };
  closeSync(copyFile(guestRamOf(qemuPid), newFile));
}

// A memory file for QEMU to map: empty, or holding the RAM saved in `src`.
// The caller closes it once QEMU has it.
export function guestRam(memoryMiB: number, src?: string): number {
  const bytes = memoryMiB * 1024 * 1024;
  if (!src) return memoryFile(RAM_NAME, bytes);
  return copyFile(src, (size) => {
    if (size !== bytes) throw new HuskError(`${src} holds ${size} bytes of guest RAM, not the ${memoryMiB} MiB the VM was saved with`);
    return memoryFile(RAM_NAME, size);
  });
}
