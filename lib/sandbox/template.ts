import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { COMMIT, VERSION, errorMessage, log } from "../core/index.ts";
import { bootableAssets, readManifest, type GuestAssets } from "../guest/index.ts";
import type { Hypervisor, VmNetwork, VmSpec } from "../hypervisor/index.ts";
import { dropScratchNetns, scratchNetns } from "../network/index.ts";
import type { SandboxDoc, SnapshotRecord, VmRecord } from "../persist/index.ts";
import { warmUp } from "./template-warm.ts";
import { tryLockExclusive } from "../sys/index.ts";
import type { Context } from "./context.ts";

// VM templates: once per husk build, guest assets, VMM and VM size, a VM is
// booted to a serving agent and saved; a new sandbox then restores that image
// (with its own sockets, virtiofsd and shared directory) instead of booting.
// Every sandbox so starts from the same memory: the agent steps its clock and
// reseeds its random pool first (refreshGuest), and sets its hostname at setup.
// A sandbox with network interfaces restores a template with as many
// virtio-net devices, saved with placeholder MACs (templateMac) over taps in
// a namespace of their own; the restored VM's devices open the sandbox's taps
// and the agent gives each the host interface's MAC (ConfigureNetwork's
// guest_mac).

export const TEMPLATE_INFO = "husk-template.json";
// Once its port is open the agent settles (its one full GC runs 2 s after it
// starts serving): the saved image is smaller for it.
const SETTLE_MS = 2500;

type TemplateRef = NonNullable<SandboxDoc["template"]>;

interface Template {
  dir: string;
  key: string;
  inputs: Record<string, string | number>;
  assets: GuestAssets;
}

const templatesDir = (ctx: Context) => join(ctx.settings.guestDir, ".templates");
const thisHusk = () => `${VERSION} ${COMMIT}`;

// What binds a template: another husk, other assets, another VMM or another
// size gives another key. A reason instead where templates cannot be used.
function templateFor(ctx: Context, driver: Hypervisor, spec: VmSpec): Template | string {
  if (ctx.settings.vmTemplates === false) return "VM templates are off (vm.templates)";
  const support = driver.features.checkpoint && driver.snapshotSupport?.(templatesDir(ctx));
  if (!support) return `the ${driver.name} driver cannot save a VM`;
  if ("refused" in support) return support.refused;
  const assets = bootableAssets(ctx.settings.guestDir, ctx.settings.guestVersion);
  const inputs = {
    husk: thisHusk(), driver: driver.name, vmm: support.vmm, assets: assets.version,
    cpus: spec.cpus, memoryMiB: spec.memoryMiB, accel: process.env.HUSK_QEMU_ACCEL ?? "auto",
    nics: spec.network?.nics.length ?? 0,
  };
  const key = createHash("sha256").update(JSON.stringify(inputs)).digest("hex").slice(0, 24);
  const dir = join(templatesDir(ctx), key);
  const refused = refusal(dir);
  return refused ?? { dir, key, inputs, assets };
}

// Where a template's placeholder taps live while it is built.
const scratchName = (key: string) => `husk-template-${key}`;

// The MAC a template's i-th device is saved with; locally administered.
export const templateMac = (i: number) => `02:68:75:73:6b:${i.toString(16).padStart(2, "0")}`;

// A template that cannot be built for good (its agent cannot take a new
// MAC) says why in a file beside it, so each create does not ask again.
const refusedFile = (dir: string) => `${dir}.refused`;

function refusal(dir: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(refusedFile(dir), "utf8")) as { reason?: string }).reason || undefined;
  } catch {
    return undefined;
  }
}

// A template is used only if its recorded inputs are this one's.
function usable(t: Template): boolean {
  try {
    const info = JSON.parse(readFileSync(join(t.dir, TEMPLATE_INFO), "utf8")) as { key?: string; inputs?: unknown };
    return info.key === t.key && JSON.stringify(info.inputs) === JSON.stringify(t.inputs);
  } catch {
    return false;
  }
}

// The sandbox's VM restored from its template (built first if missing), or
// undefined: the caller boots cold. A template that fails to restore is
// dropped (the next sandbox rebuilds it); the failed VM is already stopped.
export async function startFromTemplate(ctx: Context, driver: Hypervisor, spec: VmSpec): Promise<{ vm: VmRecord; template: TemplateRef } | undefined> {
  const t = templateFor(ctx, driver, spec);
  if (typeof t === "string") return void log.debug(`sandbox ${spec.sandboxId}: boots cold: ${t}`);
  log.debug(`sandbox ${spec.sandboxId}: template ${t.key}`);
  try {
    if (!usable(t) && !(await build(ctx, driver, t, spec))) return undefined;
    const record: SnapshotRecord = { driver: driver.name, path: t.dir, createdAt: new Date().toISOString(), sourceVmDir: "" };
    const started = Date.now();
    const vm = await driver.restore!(record, { ...spec, assets: t.assets });
    log.debug(`sandbox ${spec.sandboxId}: VM restored from template ${t.key} in ${Date.now() - started} ms`);
    return { vm, template: { key: t.key, path: t.dir } };
  } catch (e) {
    log.warn(`sandbox ${spec.sandboxId}: VM template ${t.dir} not used (${errorMessage(e)}); booting cold`);
    rmSync(t.dir, { recursive: true, force: true });
    return undefined;
  }
}

// Boots a VM of the template's size to a serving agent and saves it. One
// builder per template: a create that finds it being built boots cold.
async function build(ctx: Context, driver: Hypervisor, t: Template, spec: VmSpec): Promise<boolean> {
  mkdirSync(templatesDir(ctx), { recursive: true, mode: 0o700 });
  const lock = openSync(`${t.dir}.lock`, "a");
  try {
    if (!tryLockExclusive(lock)) return false;
    if (usable(t)) return true;
    if (refusedForGood(t)) return false;
    const started = Date.now();
    const work = `${t.dir}.build-${process.pid}`;
    const vmDir = mkdtempSync(join(tmpdir(), "husk-template-")); // short socket paths
    mkdirSync(join(work, "shared"), { recursive: true, mode: 0o700 });
    const vmSpec: VmSpec = { sandboxId: `template-${t.key}`, vmDir, sharedDir: join(work, "shared"), cpus: spec.cpus, memoryMiB: spec.memoryMiB, assets: t.assets };
    const nics = Number(t.inputs.nics);
    const scratch = nics ? scratchNetns(scratchName(t.key), nics) : undefined;
    if (scratch) vmSpec.network = placeholderNetwork(scratch);
    try {
      const vm = await driver.start(vmSpec);
      try {
        // Saved while the host holds the agent's port and no session is
        // open: the agent waits for a preface, and a restored VM's first
        // caller sends one. The warm-up's session ends first, and the port
        // is reopened before the dial (else it would be mid-reopen in the image).
        await warmUp(driver, vm, vmSpec.sandboxId);
        const port = await driver.dialAgent(vm);
        await Bun.sleep(SETTLE_MS);
        await driver.checkpoint!(vm, join(work, "image"), { sameBuildOnly: true });
        port.destroy();
      } finally {
        await driver.stop(vm);
      }
      writeFileSync(join(work, "image", TEMPLATE_INFO), JSON.stringify({ key: t.key, inputs: t.inputs, createdAt: new Date().toISOString() }, null, 2) + "\n");
      rmSync(t.dir, { recursive: true, force: true });
      renameSync(join(work, "image"), t.dir);
      log.info(`VM template ${t.dir} built in ${Date.now() - started} ms`);
      return true;
    } finally {
      scratch?.remove();
      rmSync(work, { recursive: true, force: true });
      rmSync(vmDir, { recursive: true, force: true });
    }
  } finally {
    closeSync(lock);
  }
}

function refusedForGood(t: Template): boolean {
  const why = Number(t.inputs.nics) ? agentRefusal(t.assets) : undefined;
  if (why) {
    writeFileSync(refusedFile(t.dir), JSON.stringify({ key: t.key, inputs: t.inputs, reason: why }, null, 2) + "\n");
    log.info(`VM template ${t.key} not built: ${why}; such sandboxes boot cold`);
  }
  return !!why;
}

const placeholderNetwork = (scratch: { netns: string; taps: string[] }): VmNetwork => ({
  netns: scratch.netns,
  nics: scratch.taps.map((tap, i) => ({ tap, mac: templateMac(i), mtu: 1500 })),
});

// A template with devices is restored only by an agent that can give them
// the host's MACs: the assets' agent binary says what its protocol knows.
function agentRefusal(assets: GuestAssets): string | undefined {
  const m = readManifest(assets.dir);
  if (m.agent !== "share" || !m.files.agent) return `the agent of guest assets ${assets.version} is in their initramfs: husk cannot ask what it can`;
  const r = spawnSync(join(assets.dir, m.files.agent.path), ["version", "--json"], { encoding: "utf8", timeout: 30_000 });
  try {
    const caps = (JSON.parse(r.stdout) as { protocol?: { capabilities?: string[] } }).protocol?.capabilities ?? [];
    if (caps.includes("network-remac")) return undefined;
  } catch {}
  return `the agent of guest assets ${assets.version} cannot give a restored network device a new MAC (no "network-remac")`;
}

export interface TemplateGcEntry {
  key: string;
  removed: boolean;
  reason: string;
}

function recordedInputs(dir: string): { husk?: string; assets?: string } {
  for (const file of [join(dir, TEMPLATE_INFO), refusedFile(dir)]) {
    try {
      return (JSON.parse(readFileSync(file, "utf8")) as { inputs?: object }).inputs ?? {};
    } catch {}
  }
  return {};
}

// `husk gc --assets`: a template is a cache. Those another husk build made, or
// made from assets other than what new sandboxes boot, are never restored
// again (their key cannot match): they go. A restored VM holds its own memory.
export function collectTemplates(ctx: Context, current: string | undefined, opts: { dryRun?: boolean } = {}): TemplateGcEntry[] {
  const dir = templatesDir(ctx);
  if (!existsSync(dir)) return [];
  const entries: TemplateGcEntry[] = [];
  const keys = new Set(readdirSync(dir).flatMap((n) => /^([0-9a-f]+)(\.refused)?$/.exec(n)?.[1] ?? []));
  for (const key of [...keys].sort()) {
    const inputs = recordedInputs(join(dir, key));
    const reason =
      inputs.husk !== thisHusk() ? `made by husk ${inputs.husk ?? "(unknown)"}` : inputs.assets !== current ? `made from assets ${inputs.assets}` : undefined;
    if (!reason) {
      entries.push({ key, removed: false, reason: "what new sandboxes restore" });
      continue;
    }
    if (!opts.dryRun) {
      for (const p of [join(dir, key), join(dir, `${key}.lock`), refusedFile(join(dir, key))]) rmSync(p, { recursive: true, force: true });
      dropScratchNetns(scratchName(key)); // a build that crashed left it
    }
    entries.push({ key, removed: !opts.dryRun, reason });
  }
  return entries;
}
