import { HuskError } from "../core/index.ts";

// Decoder for the LZ4 "legacy" frame the kernel build uses for an LZ4 bzImage
// payload: a magic, then blocks of <u32 compressed size><LZ4 block>, each
// expanding to at most 8 MiB. The build appends the total uncompressed size.
export const LZ4_LEGACY_MAGIC = 0x184c2102;
const LEGACY_BLOCK_MAX = 8 << 20;

function decodeBlock(src: Uint8Array, start: number, end: number, out: Uint8Array, outPos: number): number {
  let s = start;
  let d = outPos;
  while (s < end) {
    const token = src[s++]!;
    let lit = token >> 4;
    if (lit === 15) {
      let b: number;
      do lit += b = src[s++]!;
      while (b === 255);
    }
    out.set(src.subarray(s, s + lit), d);
    s += lit;
    d += lit;
    if (s >= end) break; // the last sequence has literals only
    const offset = src[s]! | (src[s + 1]! << 8);
    s += 2;
    if (offset === 0 || offset > d) throw new HuskError("LZ4 data is corrupt (bad match offset)");
    let len = (token & 15) + 4;
    if ((token & 15) === 15) {
      let b: number;
      do len += b = src[s++]!;
      while (b === 255);
    }
    // Matches may overlap their own output, so non-overlapping runs go in chunks.
    let from = d - offset;
    while (len > 0) {
      const n = Math.min(len, d - from);
      out.copyWithin(d, from, from + n);
      d += n;
      len -= n;
    }
  }
  return d;
}

export function decompressLegacyLz4(src: Uint8Array): Uint8Array {
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  if (src.length < 8 || view.getUint32(0, true) !== LZ4_LEGACY_MAGIC)
    throw new HuskError("not an LZ4 legacy stream (magic missing)");
  const blocks: Array<[number, number]> = [];
  let pos = 4;
  while (pos + 4 <= src.length) {
    const size = view.getUint32(pos, true);
    if (size === LZ4_LEGACY_MAGIC) { pos += 4; continue; } // concatenated stream
    if (size === 0 || pos + 4 + size > src.length) break; // trailing size field or padding
    blocks.push([pos + 4, pos + 4 + size]);
    pos += 4 + size;
  }
  if (blocks.length === 0) throw new HuskError("LZ4 stream has no blocks");
  let out = new Uint8Array(blocks.length * LEGACY_BLOCK_MAX);
  let d = 0;
  for (const [start, end] of blocks) d = decodeBlock(src, start, end, out, d);
  return out.subarray(0, d);
}
