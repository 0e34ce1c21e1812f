import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { HuskError, errorMessage } from "../core/index.ts";
import type { VmState } from "../hypervisor/index.ts";
import { loadBundle } from "../oci/index.ts";
import type { SandboxDoc } from "../persist/index.ts";
import { SANDBOX_IMAGE_FILE, requireSnapshots } from "./checkpoint.ts";
import type { Context } from "./context.ts";
import { makeSharedMount } from "./create-sandbox.ts";
import { destroySandbox } from "./destroy-sandbox.ts";
import { socketDir } from "./paths.ts";
import { attachProxy } from "./proxy.ts";
import { guestView } from "./rootfs.ts";

function readSavedSandbox(ctx: Context, imagePath: string): SandboxDoc {
  const file = join(imagePath, SANDBOX_IMAGE_FILE);
  let raw: string;
  try {
    raw = readFileSync(file, "utf8");
  } catch (e) {
    throw new HuskError(`restore: ${imagePath} is not a husk checkpoint: ${errorMessage(e)}`);
  }
  try {
    return ctx.store.formats.decode(JSON.parse(raw), { sandboxId: "(checkpoint)", where: file });
  } catch (e) {
    throw e instanceof HuskError ? e : new HuskError(`restore: ${file}: ${errorMessage(e)}`);
  }
}

// `husk restore`: brings a checkpointed sandbox back in a new VM directory:
// the shared directory is rebuilt from the containers' bundles, the VMM
// restores memory and devices, and the agent inside carries on as it was
// (so the capabilities negotiated before are still the ones in force).
// Containers come back without host shims: no one waits on their exit.
export async function restoreContainer(ctx: Context, id: string, opts: { imagePath: string }): Promise<void> {
  const imagePath = resolve(opts.imagePath);
  const saved = readSavedSandbox(ctx, imagePath);
  if (!saved.containers.some((c) => c.id === id)) throw new HuskError(`restore: container ${id} is not in the checkpoint at ${imagePath}`);
  requireSnapshots(saved, "restore");
  if (ctx.store.tryLoad(saved.id)) throw new HuskError(`restore: sandbox ${saved.id} exists; delete it before restoring it`);
  const { readSnapshot, restore } = await import("../hypervisor/clh/index.ts");
  const snap = readSnapshot(imagePath);
  const { hypervisor: old, ...rest } = saved;
  const sharedDir = join(ctx.store.sandboxDir(saved.id), "shared");
  const doc: SandboxDoc = { ...rest, state: "creating", config: { ...saved.config, sharedDir } };
  doc.containers = saved.containers.map(({ pid: _p, pidStartTime: _s, ...c }) => c);
  await ctx.store.create(doc);
  try {
    mkdirSync(sharedDir, { recursive: true, mode: 0o700 });
    makeSharedMount(sharedDir);
    for (const c of doc.containers) guestView(doc, c.id, loadBundle(c.bundle));
    const vmDir = socketDir(ctx, doc.id);
    const vm = await restore(ctx.settings, snap, { sandboxId: doc.id, vmDir, sharedDir, cpus: doc.config.cpus ?? 1, memoryMiB: doc.config.memoryMiB ?? 512 });
    await record(ctx, doc.id, vm, old?.assetsVersion);
  } catch (e) {
    await destroySandbox(ctx, doc.id, { force: true }).catch(() => {});
    throw e;
  }
}

async function record(ctx: Context, id: string, vm: VmState, assetsVersion?: string): Promise<void> {
  const d = await ctx.store.update(id, (x) => {
    x.hypervisor = { ...vm, assetsVersion: vm.assetsVersion ?? assetsVersion } as SandboxDoc["hypervisor"];
  });
  const channel = await attachProxy(ctx, d);
  await ctx.store.update(id, (x) => {
    if (x.agent) x.agent.channel = channel;
    x.state = "running";
    for (const c of x.containers) if (c.state === "paused") c.state = "running";
  });
}
