import { writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { HuskError } from "../core/index.ts";
import type { SandboxDoc } from "../persist/index.ts";
import { vmStateOf } from "./agent.ts";
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
  const driver = doc.hypervisor?.driver ?? "none";
  if (driver !== "clh")
    throw new HuskError(`${what}: sandbox ${doc.id} runs on the ${driver} driver, which cannot ${what} yet; cloud-hypervisor (--hypervisor clh) can`);
}

// `husk checkpoint`: saves the whole sandbox VM holding the container (every
// container in it is saved with it). The VM stays paused unless leaveRunning.
export async function checkpointContainer(ctx: Context, id: string, opts: CheckpointOptions): Promise<void> {
  const { sandbox } = findContainer(ctx, id);
  requireSnapshots(sandbox, "checkpoint");
  const { checkpoint } = await import("../hypervisor/clh/index.ts");
  const dest = resolve(opts.imagePath);
  await ctx.store.update(sandbox.id, async (doc) => {
    const snap = await checkpoint(vmStateOf(doc), dest, { leaveRunning: opts.leaveRunning });
    doc.hypervisor!.extra = { ...doc.hypervisor!.extra, lastSnapshot: snap };
    if (!opts.leaveRunning) {
      doc.state = "paused";
      for (const c of doc.containers) if (c.state === "running") c.state = "paused";
    }
    writeFileSync(join(dest, SANDBOX_IMAGE_FILE), JSON.stringify(doc, null, 2) + "\n");
  });
}
