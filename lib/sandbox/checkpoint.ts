import { readdirSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ErrorCode, HuskError } from "../core/index.ts";
import { driversWith, featuresOf } from "../hypervisor/index.ts";
import type { SandboxDoc } from "../persist/index.ts";
import { driverOfDoc, vmOf } from "./agent.ts";
import type { Context } from "./context.ts";
import { writeDumpStats, writeInventory } from "./criu-images.ts";
import { findContainer } from "./find.ts";
import { recordShareSlots } from "./share-layout.ts";

// Beside the VMM's snapshot: the sandbox's persist document at checkpoint
// time, from which restore rebuilds the sandbox.
export const SANDBOX_IMAGE_FILE = "husk-sandbox.json";

export interface CheckpointOptions {
  imagePath: string;
  workPath?: string; // where CRIU would leave its statistics, and clients look for them
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
    recordShareSlots(doc);
    const t0 = performance.now();
    const snap = await driver.checkpoint!(vmOf(doc), dest, { leaveRunning: opts.leaveRunning });
    const micros = Math.round((performance.now() - t0) * 1000);
    doc.snapshots = [...(doc.snapshots ?? []), snap];
    if (!opts.leaveRunning) {
      doc.state = "paused";
      for (const c of doc.containers) if (c.state === "running") c.state = "paused";
    }
    writeDumpStats(resolve(opts.workPath ?? dest), { frozenMicros: micros, writeMicros: micros, pagesWritten: pagesIn(dest) });
    writeFileSync(join(dest, SANDBOX_IMAGE_FILE), JSON.stringify(doc, null, 2) + "\n");
    writeInventory(dest);
  });
}

// Data written to the checkpoint directory so far, in 4 KiB pages (a sparse
// RAM file counts what it holds).
function pagesIn(dest: string): number {
  const bytes = readdirSync(dest).reduce((sum, name) => sum + statSync(join(dest, name)).blocks * 512, 0);
  return Math.ceil(bytes / 4096);
}
