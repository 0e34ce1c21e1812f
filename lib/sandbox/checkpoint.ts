import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ErrorCode, HuskError } from "../core/index.ts";
import { driversWith, featuresOf } from "../hypervisor/index.ts";
import type { SandboxDoc } from "../persist/index.ts";
import { driverOfDoc, vmOf } from "./agent.ts";
import type { Context } from "./context.ts";
import { findContainer } from "./find.ts";

// Beside the VMM's snapshot: the sandbox's persist document at checkpoint
// time, from which restore rebuilds the sandbox.
export const SANDBOX_IMAGE_FILE = "husk-sandbox.json";

export interface CheckpointOptions {
  imagePath: string;
  leaveRunning?: boolean;
}

export function requireSnapshots(doc: SandboxDoc, what: string): void {
  const driver = doc.vm?.driver;
  if (driver && featuresOf(driver).checkpoint) return;
  const can = driversWith("checkpoint").map((d) => `the ${d} driver can (--hypervisor ${d})`).join(", ");
  throw new HuskError(`${what}: sandbox ${doc.id} runs on the ${driver ?? "(no)"} driver, which cannot ${what} yet; ${can}`, {
    code: ErrorCode.Unimplemented,
  });
}

// `husk checkpoint`: saves the whole sandbox VM holding the container (every
// container in it is saved with it). The VM stays paused unless leaveRunning.
export async function checkpointContainer(ctx: Context, id: string, opts: CheckpointOptions): Promise<void> {
  const { sandbox } = findContainer(ctx, id);
  requireSnapshots(sandbox, "checkpoint");
  const driver = await driverOfDoc(ctx, sandbox);
  const dest = resolve(opts.imagePath);
  await ctx.store.update(sandbox.id, async (doc) => {
    const snap = await driver.checkpoint!(vmOf(doc), dest, { leaveRunning: opts.leaveRunning });
    doc.snapshots = [...(doc.snapshots ?? []), snap];
    if (!opts.leaveRunning) {
      doc.state = "paused";
      for (const c of doc.containers) if (c.state === "running") c.state = "paused";
    }
    writeFileSync(join(dest, SANDBOX_IMAGE_FILE), JSON.stringify(doc, null, 2) + "\n");
    writeCompleteMark(dest);
  });
}

// podman restores only from a directory holding CRIU's inventory.img, its
// sign of a complete checkpoint. Written last, as a valid inventory record
// (CRIU reads it: magic 0x58313116, then one length-prefixed InventoryEntry
// with img_version 2); the VM itself is in husk's own files.
const CRIU_INVENTORY = "inventory.img";

function writeCompleteMark(dest: string): void {
  const entry = Uint8Array.of(0x08, 0x02); // field 1 (img_version), varint 2
  const head = Buffer.alloc(8);
  head.writeUInt32LE(0x58313116, 0);
  head.writeUInt32LE(entry.length, 4);
  writeFileSync(join(dest, CRIU_INVENTORY), Buffer.concat([head, entry]));
}
