import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ErrorCode, HuskError, errorMessage, log, processStartTime } from "../core/index.ts";
import { driverFor } from "../hypervisor/index.ts";
import { alignNetwork, attachNetwork, networkChange, networkPlan, planNetwork, tapsOf, type NetworkRecord } from "../network/index.ts";
import { loadBundle } from "../oci/index.ts";
import type { SandboxDoc, SnapshotRecord, VmRecord } from "../persist/index.ts";
import { SANDBOX_IMAGE_FILE, requireSnapshots } from "./checkpoint.ts";
import type { Context } from "./context.ts";
import { startShim, writePidFile } from "./create.ts";
import { guestNetwork, makeSharedMount } from "./create-sandbox.ts";
import { destroySandbox } from "./destroy-sandbox.ts";
import { socketDir } from "./paths.ts";
import { startProxy } from "./proxy.ts";
import { guestView, shareNameOf } from "./rootfs.ts";
import { placeMounts } from "./share-layout.ts";
import { spawnShim } from "./shim-spawn.ts";
import { viewOf } from "./shim-view.ts";
import { withAgent, refreshGuest } from "./agent.ts";

export interface RestoreOptions {
  imagePath: string;
  bundle?: string; // the named container's bundle now, if the client made it anew
  pidFile?: string;
  consoleSocket?: string;
}

const LIVE = new Set(["created", "running", "paused"]);

// A shim per live container waits on it again and records its exit.
async function attachShims(ctx: Context, sandboxId: string, named: string, opts: RestoreOptions): Promise<void> {
  const live = ctx.store.load(sandboxId).containers.filter((c) => LIVE.has(c.state));
  const pids = new Map<string, number>();
  for (const c of live) {
    const t = { sandboxId, containerId: c.id };
    const view = viewOf(loadBundle(c.bundle)); // the bundle the share was laid out from
    pids.set(c.id, c.id === named ? startShim(ctx, t, opts.consoleSocket, view) : spawnShim(ctx, t, "ignore", view));
  }
  await ctx.store.update(sandboxId, (x) => {
    for (const c of x.containers) {
      const pid = pids.get(c.id);
      if (pid) Object.assign(c, { pid, pidStartTime: processStartTime(pid) });
    }
  });
  const pid = pids.get(named);
  if (opts.pidFile && pid) writePidFile(opts.pidFile, pid);
}

function readSavedSandbox(ctx: Context, imagePath: string): SandboxDoc {
  const file = join(imagePath, SANDBOX_IMAGE_FILE);
  let raw: string;
  try {
    raw = readFileSync(file, "utf8");
  } catch (e) {
    throw new HuskError(`restore: ${imagePath} is not a husk checkpoint: ${errorMessage(e)}`, { code: ErrorCode.NotFound });
  }
  try {
    return ctx.store.formats.decode(JSON.parse(raw), { sandboxId: "(checkpoint)", where: file });
  } catch (e) {
    throw e instanceof HuskError ? e : new HuskError(`restore: ${file}: ${errorMessage(e)}`, { code: ErrorCode.InvalidArgument });
  }
}

// The snapshot this checkpoint directory holds, as the saved document records
// it (the last one taken: the document was saved with it). A checkpoint
// directory may have been moved or copied since.
function snapshotIn(saved: SandboxDoc, imagePath: string): SnapshotRecord {
  const snap = saved.snapshots?.findLast((s) => resolve(s.path) === imagePath) ?? saved.snapshots?.at(-1);
  if (!snap) throw new HuskError(`restore: the checkpoint in ${imagePath} records no snapshot of its VM`, { code: ErrorCode.NotFound });
  return { ...snap, path: imagePath };
}

interface NetworkAgain {
  network: NetworkRecord | undefined;
  // The namespace changed: what the agent configures the guest's devices with again.
  reconfigure?: ReturnType<typeof guestNetwork> & { replace: true };
}

// The guest wakes configured as it was saved. The network namespace its first
// container's bundle names now (a client may have made a new one for the
// restore) gets taps again beside its interfaces; if they changed (addresses,
// MACs, names), the agent configures its devices again, which it can do only
// for as many interfaces as the VM has devices.
function networkAgain(saved: SandboxDoc): NetworkAgain {
  const was = saved.network;
  if (!was?.interfaces?.length) return { network: was };
  const first = saved.containers[0]!;
  const plan = networkPlan(loadBundle(first.bundle).spec, saved.id);
  if (plan.mode !== "netns")
    throw new HuskError(`restore: sandbox ${saved.id} was checkpointed with network interfaces, but container ${first.id}'s bundle names no network namespace`, {
      code: ErrorCode.FailedPrecondition,
    });
  const now = alignNetwork(was, planNetwork(plan.netns));
  const change = networkChange(was, now);
  if (!change) return { network: now };
  const refuse = (why: string) =>
    new HuskError(`restore: network namespace ${plan.netns} is not what sandbox ${saved.id} was checkpointed with (${change}), and ${why}`, {
      code: ErrorCode.FailedPrecondition,
    });
  if (now.interfaces!.length !== was.interfaces.length)
    throw refuse(`a VM's network devices are fixed when it starts: it has ${was.interfaces.length}`);
  if (!saved.agent?.capabilities.includes("network-reconfigure"))
    throw refuse(`its agent cannot configure the guest's network again (no "network-reconfigure")`);
  log.debug(`restore: sandbox ${saved.id}: the guest's network is configured again (${change})`);
  // Device k still carries the MAC of the interface it was saved with.
  const oldMac = (k: number) => was.interfaces![k]!.mac ?? "";
  return { network: now, reconfigure: { ...guestNetwork(now, oldMac), replace: true } };
}

// After the restore: the clock and random pool, the network if it changed,
// and the container's id if it was restored under another.
async function refreshRestored(ctx: Context, id: string, again: NetworkAgain, rename: { from: string; to: string } | undefined): Promise<void> {
  await withAgent(ctx, ctx.store.load(id), async (a) => {
    await refreshGuest(a, id);
    if (again.reconfigure) await a.rpc.configureNetwork(again.reconfigure);
    if (rename) await a.rpc.renameContainer({ containerId: rename.from, newId: rename.to });
  });
}

// The checkpoint as the caller names it. The named container's bundle is
// the one the client gives now (podman's restore --import writes a new one).
// A checkpoint of one container restored under another id (--import
// --name) takes that id, and so does its sandbox if it was named after it;
// its share keeps the name its guest knows, and the agent learns the new id.
function asNamed(saved: SandboxDoc, id: string, bundle: string | undefined, imagePath: string): { saved: SandboxDoc; renamedFrom?: string } {
  const withBundle = (c: SandboxDoc["containers"][number]) => (bundle ? { ...c, bundle: resolve(bundle) } : c);
  if (saved.containers.some((c) => c.id === id))
    return { saved: { ...saved, containers: saved.containers.map((c) => (c.id === id ? withBundle(c) : c)) } };
  const only = saved.containers.length === 1 ? saved.containers[0]! : undefined;
  if (!only) throw new HuskError(`restore: container ${id} is not in the checkpoint at ${imagePath}`, { code: ErrorCode.NotFound });
  if (!saved.agent?.capabilities.includes("rename"))
    throw new HuskError(`restore: the checkpoint at ${imagePath} holds container ${only.id}, and its agent cannot rename it to ${id} (no "rename"); restore it as ${only.id}`, {
      code: ErrorCode.FailedPrecondition,
    });
  const renamed = { ...withBundle(only), id, shareName: only.shareName ?? shareNameOf(only.id) };
  return { saved: { ...saved, id: saved.id === only.id ? id : saved.id, containers: [renamed] }, renamedFrom: only.id };
}

// The share as the saved guest knows it: each container's rootfs, and each
// bind source at the slot the guest mounted it from (by destination, where
// the checkpoint recorded the slots; else in the bundle's order, as created).
function layOutShares(doc: SandboxDoc, sharedFs: boolean): void {
  for (const c of doc.containers) {
    const bundle = loadBundle(c.bundle);
    guestView(doc, c.id, bundle, sharedFs, c.shareSlots && placeMounts(c.id, bundle, c.shareSlots));
  }
}

// The restored VM runs the memory image of the old one: the same guest assets.
const sameAssets = (vm: VmRecord, old: VmRecord | undefined): VmRecord =>
  old && "assetsVersion" in old && old.assetsVersion && !("assetsVersion" in vm && vm.assetsVersion)
    ? ({ ...vm, assetsVersion: old.assetsVersion } as VmRecord)
    : vm;

// The document the restored sandbox starts from: the saved one without what
// belonged to the old VM (its host cgroup was removed with it, not claimed
// again), with the network found now and a new shared directory.
function restoredDoc(ctx: Context, saved: SandboxDoc, network: NetworkRecord | undefined): SandboxDoc {
  const { vm: _vm, hypervisor: _legacy, proxy: _proxy, hostCgroup: _cg, template: _t, ...rest } = saved;
  const sharedDir = join(ctx.store.sandboxDir(saved.id), "shared");
  const containers = saved.containers.map(({ pid: _p, pidStartTime: _s, ...c }) => c);
  return { ...rest, network, containers, state: "creating", config: { ...saved.config, sharedDir } };
}

// `husk restore`: brings a checkpointed sandbox back in a new VM directory:
// the shared directory is rebuilt from the containers' bundles, the VMM
// restores memory and devices, and the agent inside carries on as it was
// (so the capabilities negotiated before are still the ones in force).
// Every live container gets a shim again; the named one's has the caller's
// stdio (or console socket) and its pid goes to --pid-file.
export async function restoreContainer(ctx: Context, id: string, opts: RestoreOptions): Promise<void> {
  const imagePath = resolve(opts.imagePath);
  const { saved, renamedFrom } = asNamed(readSavedSandbox(ctx, imagePath), id, opts.bundle, imagePath);
  requireSnapshots(saved, "restore");
  const snap = snapshotIn(saved, imagePath);
  if (ctx.store.tryLoad(saved.id)) throw new HuskError(`restore: sandbox ${saved.id} exists; delete it before restoring it`, { code: ErrorCode.AlreadyExists });
  const driver = await driverFor(saved.vm!.driver, ctx.settings);
  const again = networkAgain(saved);
  const network = again.network;
  const doc = restoredDoc(ctx, saved, network);
  const sharedDir = doc.config.sharedDir!;
  await ctx.store.create(doc); // with the network: a failure from here on removes its taps
  try {
    mkdirSync(sharedDir, { recursive: true, mode: 0o700 });
    makeSharedMount(sharedDir);
    layOutShares(doc, driver.features.sharedFs);
    if (network?.interfaces?.length) attachNetwork(network);
    const spec = { sandboxId: doc.id, vmDir: socketDir(ctx, doc.id), sharedDir, cpus: doc.config.cpus ?? 1, memoryMiB: doc.config.memoryMiB ?? 512, network: tapsOf(network) };
    const vm = await driver.restore!(snap, spec);
    await ctx.store.update(doc.id, (x) => {
      x.vm = sameAssets(vm, saved.vm);
    });
    const proxy = await startProxy(ctx, doc.id);
    await ctx.store.update(doc.id, (x) => {
      x.proxy = proxy;
      if (x.agent) x.agent.channel = { kind: "unix", path: proxy.socket };
      x.state = "running";
      for (const c of x.containers) if (c.state === "paused") c.state = "running";
    });
    await refreshRestored(ctx, doc.id, again, renamedFrom ? { from: renamedFrom, to: id } : undefined);
    await attachShims(ctx, doc.id, id, opts);
  } catch (e) {
    await destroySandbox(ctx, doc.id, { force: true }).catch(() => {});
    throw e;
  }
}
