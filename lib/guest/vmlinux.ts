import { HuskError } from "../core/index.ts";
import { decompressLegacyLz4 } from "./lz4.ts";

// A bzImage is real-mode setup sectors followed by the protected-mode part,
// whose header gives the compressed payload's offset and length. QEMU's PVH
// entry needs the ELF inside that payload (an uncompressed vmlinux).
const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46];

function payloadOf(bz: Uint8Array, name: string): Uint8Array {
  const view = new DataView(bz.buffer, bz.byteOffset, bz.byteLength);
  if (bz.length < 0x260 || view.getUint32(0x202, true) !== 0x53726448) // "HdrS"
    throw new HuskError(`${name} is not a bzImage (no HdrS boot header)`);
  const setupSects = bz[0x1f1] || 4;
  const base = (setupSects + 1) * 512;
  const offset = view.getUint32(0x248, true);
  const length = view.getUint32(0x24c, true);
  if (base + offset + length > bz.length) throw new HuskError(`${name}: payload runs past the end of the file`);
  return bz.subarray(base + offset, base + offset + length);
}

export function isElf(b: Uint8Array): boolean {
  return ELF_MAGIC.every((m, i) => b[i] === m);
}

export function extractVmlinux(bzImage: Uint8Array, name = "kernel image"): Uint8Array {
  if (isElf(bzImage)) return bzImage; // already uncompressed
  const payload = payloadOf(bzImage, name);
  if (payload[0] !== 0x02 || payload[1] !== 0x21 || payload[2] !== 0x4c || payload[3] !== 0x18)
    throw new HuskError(`${name}: payload is not LZ4-compressed (only LZ4 kernels are supported)`);
  const elf = decompressLegacyLz4(payload);
  if (!isElf(elf)) throw new HuskError(`${name}: decompressed payload is not an ELF vmlinux`);
  return elf;
}
