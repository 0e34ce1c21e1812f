// newc ("070701") cpio archive writer, the format the kernel unpacks as an
// initramfs. Entries are kept in memory: the guest's initramfs is small.
export type CpioEntry =
  | { kind: "file"; path: string; data: Uint8Array; mode?: number }
  | { kind: "dir"; path: string; mode?: number }
  | { kind: "symlink"; path: string; target: string };

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const enc = new TextEncoder();
const hex8 = (n: number) => n.toString(16).padStart(8, "0");
const pad4 = (n: number) => (4 - (n % 4)) % 4;

function header(ino: number, mode: number, size: number, nameLen: number): string {
  const f = [ino, mode, 0, 0, 1, 0, size, 0, 0, 0, 0, nameLen, 0];
  return "070701" + f.map(hex8).join("");
}

function record(ino: number, mode: number, path: string, data: Uint8Array): Uint8Array[] {
  const name = enc.encode(path.replace(/^\/+/, "") + "\0");
  const head = enc.encode(header(ino, mode, data.length, name.length));
  const namePad = new Uint8Array(pad4(head.length + name.length));
  return [head, name, namePad, data, new Uint8Array(pad4(data.length))];
}

export function writeCpio(entries: CpioEntry[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let ino = 1;
  for (const e of entries) {
    if (e.kind === "file") parts.push(...record(ino++, S_IFREG | (e.mode ?? 0o644), e.path, e.data));
    else if (e.kind === "dir") parts.push(...record(ino++, S_IFDIR | (e.mode ?? 0o755), e.path, new Uint8Array()));
    else parts.push(...record(ino++, S_IFLNK | 0o777, e.path, enc.encode(e.target)));
  }
  parts.push(...record(0, 0, "TRAILER!!!", new Uint8Array()));
  return Buffer.concat(parts);
}
