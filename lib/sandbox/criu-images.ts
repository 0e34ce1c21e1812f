import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

// Two files of CRIU's image format that clients of a runtime read from a
// checkpoint directory; the VM itself is in husk's own files. Each is a
// magic, then one length-prefixed protobuf entry (CRIU's images/*.proto).
const INVENTORY_MAGIC = 0x58313116;
const SERVICE_MAGIC = 0x55105940; // precedes the magic of a "service" image such as stats
const STATS_MAGIC = 0x57093306;

function writeImage(file: string, magics: number[], entry: Uint8Array): void {
  const w = new BinaryWriter();
  for (const m of magics) w.fixed32(m);
  writeFileSync(file, w.fixed32(entry.length).raw(entry).finish());
}

// podman restores only from a directory holding inventory.img (its sign of
// a complete checkpoint): an InventoryEntry with img_version 2. Written last.
export function writeInventory(dest: string): void {
  const entry = new BinaryWriter().tag(1, WireType.Varint).uint32(2).finish();
  writeImage(join(dest, "inventory.img"), [INVENTORY_MAGIC], entry);
}

export interface DumpFigures {
  frozenMicros: number; // how long the VM stood paused while it was saved
  writeMicros: number; // how long writing its memory and devices took
  pagesWritten: number; // 4 KiB pages of guest memory in the checkpoint
}

// stats-dump: what `podman container checkpoint --print-stats` shows and
// what podman's --export carries along. A StatsEntry whose field 1 is a
// dump_stats_entry; the fields CRIU declares required are all present.
export function writeDumpStats(dest: string, f: DumpFigures): void {
  const fields: [number, number][] = [
    [1, 0], // freezing_time: the VM is paused in one QMP call
    [2, f.frozenMicros],
    [3, 0], // memdump_time: no separate collection step
    [4, f.writeMicros],
    [5, f.pagesWritten], // pages_scanned
    [6, 0], // pages_skipped_parent
    [7, f.pagesWritten],
    [9, 0], // pages_lazy
  ];
  const dump = new BinaryWriter();
  for (const [field, value] of fields) dump.tag(field, WireType.Varint).uint64(Math.round(value));
  const entry = new BinaryWriter().tag(1, WireType.LengthDelimited).bytes(dump.finish()).finish();
  mkdirSync(dest, { recursive: true });
  writeImage(join(dest, "stats-dump"), [SERVICE_MAGIC, STATS_MAGIC], entry);
}
