import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ErrorCode, HuskError, crashPoint, log, validateId } from "../core/index.ts";
import { driverFor, driversWith, resolveDriverName, type Hypervisor, type VmSpec } from "../hypervisor/index.ts";
import { attachNetwork, networkPlan, planNetwork, releaseNetwork, tapsOf, type NetworkRecord } from "../network/index.ts";
import type { Spec } from "../oci/index.ts";
import { holdMarker, newSandboxDoc, type ContainerDoc, type ProxyRecord, type SandboxDoc, type SandboxLock } from "../persist/index.ts";
import { connectAgent } from "../protocol/index.ts";
import type { Context } from "./context.ts";
import { destroySandbox } from "./destroy-sandbox.ts";
import { socketDir } from "./paths.ts";
import { VM_DEFAULTS } from "./sizing.ts";
import { enterCgroup, hostCgroupPath, makeCgroup, removeCgroup } from "../cgroups/index.ts";
import { launchProxy, startProxy, stopProxy } from "./proxy.ts";
import { refreshGuest } from "./agent.ts";
import { startFromTemplate, templateMac } from "./template.ts";
import { refuseHostNamespaces } from "./host-namespaces.ts";

export interface SandboxOptions {
  id: string;
  hostname?: string;
  annotations?: Record<string, string>;
  cpus?: number;
  memoryMiB?: number;
  spec?: Spec; // the first container's: its network namespace becomes the VM's network
  systemdCgroup?: boolean; // its cgroupsPath is "slice:prefix:name"
}

// A sandbox whose VM (or local agent) runs and whose agent answered, not yet
// recorded as running: the caller adds what it made and saves once.
export interface BootedSandbox {
  doc: SandboxDoc; // as saved: state "creating", with its VM
  ready: Pick<SandboxDoc, "agent" | "proxy">; // what the final save records
}

// The document is saved as "creating" before anything starts and again once
// the VM runs, so a crash leaves a trace `husk gc` or `delete --force` can
// clean up; `first` is the container the sandbox is made for.
export async function bootSandbox(ctx: Context, opts: SandboxOptions, first?: ContainerDoc): Promise<BootedSandbox> {
  validateId(opts.id, "sandbox");
  const driverName = resolveDriverName(ctx.settings);
  const sharedDir = join(ctx.store.sandboxDir(opts.id), "shared");
  const doc = newSandboxDoc({
    id: opts.id,
    config: { cpus: opts.cpus ?? 1, memoryMiB: opts.memoryMiB ?? 256, hypervisor: ctx.settings.hypervisor, sharedDir },
    annotations: opts.annotations,
    containers: first ? [first] : [],
  });
  await ctx.store.create(doc);
  log.debug(`sandbox ${opts.id}: saved as creating`);
  holdCreating(ctx, opts.id);
  crashPoint("create:saved-creating");
  let proxy: ProxyRecord | undefined;
  try {
    const driver = await driverFor(driverName, ctx.settings);
    if (driver.features.isolation === "vm") {
      if (opts.spec) refuseHostNamespaces(opts.spec, `sandbox ${opts.id}`);
      await placeOnHost(ctx, doc, opts);
    } else if (opts.systemdCgroup) log.warn(`sandbox ${opts.id}: --systemd-cgroup: the ${driver.name} driver's runc gets cgroupsPath as a cgroupfs path`);
    const spec = { sandboxId: opts.id, vmDir: socketDir(ctx, opts.id), sharedDir, cpus: doc.config.cpus!, memoryMiB: doc.config.memoryMiB! };
    // A VM's proxy starts with it and serves once the VM is recorded.
    const early = driver.features.isolation === "vm" ? launchProxy(ctx, opts.id, PROXY_WAIT_MS) : undefined;
    early?.ready.catch(() => {}); // awaited below; a failure before then stops it through `proxy`
    proxy = early?.record;
    const { saved, restored } = await startVm(ctx, driver, spec, vmNetwork(driver, opts));
    await early?.ready;
    const channel = driver.channel(saved.vm!);
    if (!proxy && channel.kind !== "unix") proxy = await startProxy(ctx, opts.id);
    if (proxy) log.debug(`sandbox ${opts.id}: proxy serving`);
    const agent = await handshake(saved, proxy?.socket ?? channel.path, opts.hostname, restored);
    log.debug(`sandbox ${opts.id}: agent ready`);
    crashPoint("create:agent-ready");
    return { doc: saved, ready: { agent, proxy } };
  } catch (e) {
    await stopProxy({ ...doc, proxy }).catch(() => {});
    await destroySandbox(ctx, opts.id, { force: true }).catch(() => {});
    doneCreating(ctx, opts.id);
    throw e;
  }
}

// How long a proxy started with its VM may wait for it to be recorded: the
// slowest VM start (a cold boot under TCG on a loaded host) with room.
const PROXY_WAIT_MS = 120_000;

// `husk create` holds <sandbox>/create.lock from its first save until the
// sandbox is recorded as running: a "creating" sandbox whose marker nobody
// holds was left by a create that died, and `husk gc` removes it at once.
export const CREATE_MARKER = "create.lock";
const markers = new Map<string, SandboxLock>();

function holdCreating(ctx: Context, id: string): void {
  const dir = ctx.store.sandboxDir(id);
  const held = holdMarker(join(dir, CREATE_MARKER));
  if (held) markers.set(dir, held);
}

// Called once the final save is written (or the sandbox is gone).
export function doneCreating(ctx: Context, id: string): void {
  const dir = ctx.store.sandboxDir(id);
  markers.get(dir)?.release();
  markers.delete(dir);
}

// A VM's host processes (VMM, virtiofsd, proxy, shims) are accounted where
// the first container's cgroupsPath says, as runc would place the container,
// limited to guest memory and the host side's overhead. It is recorded
// before anything runs in it; this process then enters it, so all it starts
// is born there.
async function placeOnHost(ctx: Context, doc: SandboxDoc, opts: SandboxOptions): Promise<void> {
  const cgroupsPath = opts.spec?.linux?.cgroupsPath;
  if (!cgroupsPath) return;
  const where = hostCgroupPath(cgroupsPath, !!opts.systemdCgroup);
  const overhead = ctx.settings.vmHostOverheadMiB ?? VM_DEFAULTS.hostOverheadMiB;
  const cg = makeCgroup(where, (doc.config.memoryMiB! + overhead) * 1024 * 1024);
  try {
    await ctx.store.update(doc.id, (d) => void (d.hostCgroup = cg));
  } catch (e) {
    await removeCgroup(cg, 0);
    throw e;
  }
  enterCgroup(cg);
}

// A VM gets the network namespace the spec names, mirrored (lib/network);
// without a VM (local) runc joins it itself.
function vmNetwork(driver: Hypervisor, opts: SandboxOptions): NetworkRecord | undefined {
  if (driver.features.isolation !== "vm" || !opts.spec) return undefined;
  const plan = networkPlan(opts.spec, opts.id);
  if (plan.mode === "none") return { mode: "none" };
  if (!driver.features.networkDevices)
    throw new HuskError(`sandbox ${opts.id}: the ${driver.name} driver cannot give its VM network devices; use a driver that can (${driversWith("networkDevices").join(", ")})`, {
      code: ErrorCode.Unimplemented,
    });
  return planNetwork(plan.netns);
}

// The network is recorded before its taps are made and the VM the moment it
// runs: from then on a failure or a crash is cleaned up with them. The VM is
// restored from a template where one can be.
async function startVm(ctx: Context, driver: Hypervisor, base: VmSpec, network?: NetworkRecord): Promise<{ saved: SandboxDoc; restored: boolean }> {
  mkdirSync(base.sharedDir, { recursive: true, mode: 0o700 });
  if (driver.features.sharedFs) makeSharedMount(base.sharedDir);
  const taps = tapsOf(network);
  const spec: VmSpec = taps ? { ...base, network: taps } : base;
  let template: SandboxDoc["template"];
  if (taps) {
    await ctx.store.update(spec.sandboxId, (x) => void (x.network = network));
    attachNetwork(network!);
    crashPoint("create:network-attached");
  }
  let vm;
  try {
    const fromTemplate = await startFromTemplate(ctx, driver, spec);
    template = fromTemplate?.template;
    vm = fromTemplate?.vm ?? (await driver.start(spec));
    crashPoint("create:vm-started");
  } catch (e) {
    releaseNetwork(network);
    throw e;
  }
  try {
    const saved = await ctx.store.update(spec.sandboxId, (x) => {
      x.vm = vm;
      if (network) x.network = network;
      if (template) x.template = template;
    });
    crashPoint("create:saved-vm");
    return { saved, restored: !!template };
  } catch (e) {
    await driver.stop(vm).catch(() => {});
    releaseNetwork(network);
    throw e;
  }
}

async function handshake(doc: SandboxDoc, socket: string, hostname: string | undefined, restored: boolean): Promise<SandboxDoc["agent"]> {
  const agent = await connectAgent({ unix: socket }, { sandboxId: doc.id, what: `the agent of sandbox ${doc.id} at ${socket}` });
  log.debug(`sandbox ${doc.id}: handshake done`);
  try {
    // Independent calls, sent together: each round trip to a guest under TCG counts.
    await Promise.all([
      restored && refreshGuest(agent, doc.id),
      agent.has("sandbox") && agent.rpc.setupSandbox({ sandboxId: doc.id, hostname: hostname ?? "" }),
    ]);
    // An agent without "network" fails here by name: never an unnetworked container.
    if (doc.network?.interfaces?.length) await agent.rpc.configureNetwork(guestNetwork(doc.network, restored ? templateMac : undefined));
    const n = agent.negotiated;
    return {
      channel: { kind: "unix", path: socket },
      version: n.agentVersion,
      protocolVersion: String(n.protocolVersion),
      capabilities: n.capabilities,
      connectedAt: new Date().toISOString(),
    };
  } finally {
    agent.close();
  }
}

// What the agent configures. `guestMac`: the MAC device k carries now, when
// not the host interface's (a template's placeholder, a checkpoint's old one).
export const guestNetwork = (n: NetworkRecord, guestMac?: (k: number) => string) => ({
  interfaces: (n.interfaces ?? []).map((i, k) => ({
    name: i.name, mac: i.mac ?? "", mtu: i.mtu ?? 0, addresses: i.addresses ?? [], guestMac: guestMac?.(k) ?? "",
  })),
  routes: (n.routes ?? []).map((r) => ({ destination: r.destination, gateway: r.gateway ?? "", device: r.device ?? "", family: r.family ?? 4 })),
});

// Records a booted sandbox as running.
export function markRunning(doc: SandboxDoc, ready: BootedSandbox["ready"]): void {
  doc.agent = ready.agent;
  if (ready.proxy) doc.proxy = ready.proxy;
  doc.state = "running";
}

// The Sandbox API's create: a sandbox without containers.
export async function createSandbox(ctx: Context, opts: SandboxOptions): Promise<SandboxDoc> {
  const booted = await bootSandbox(ctx, opts);
  try {
    return await ctx.store.update(opts.id, (d) => markRunning(d, booted.ready));
  } catch (e) {
    await destroySandbox(ctx, opts.id, { force: true }).catch(() => {});
    throw e;
  } finally {
    doneCreating(ctx, opts.id);
  }
}

// virtiofsd serves the directory from a mount namespace of its own; rootfs
// binds made there later reach it only if the directory is a shared mount.
export function makeSharedMount(dir: string): void {
  for (const args of [["--bind", dir, dir], ["--make-shared", dir]]) {
    const r = spawnSync("mount", args, { encoding: "utf8" });
    if (r.status !== 0) throw new HuskError(`mount ${args.join(" ")}: ${(r.stderr ?? "").trim()}`);
  }
}
