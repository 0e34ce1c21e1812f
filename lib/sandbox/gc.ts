import { errorMessage } from "../core/index.ts";
import { driverFor, featuresOf, running } from "../hypervisor/index.ts";
import type { SandboxDoc } from "../persist/index.ts";
import type { Context } from "./context.ts";
import { destroySandbox } from "./destroy-sandbox.ts";

// A create that has not finished within this long has crashed.
const CREATE_GRACE_MS = 5 * 60_000;

export interface GcEntry {
  sandbox: string;
  reason: string;
  removed: boolean;
  error?: string;
}

// Why a sandbox is garbage, or undefined when it is alive. The VM record's
// own driver says whether its process runs (pid and start time).
export async function garbageReason(ctx: Context, doc: SandboxDoc, now = Date.now()): Promise<string | undefined> {
  const vm = doc.vm;
  const main = vm && (await driverFor(vm.driver, ctx.settings)).mainProcess(vm);
  const vmAlive = running(main);
  if (doc.state === "creating") {
    if (!vm) return now - Date.parse(doc.createdAt) > CREATE_GRACE_MS ? "create never started its VM" : undefined;
    if (!vmAlive) return "create crashed: its VM or agent is gone";
    return now - Date.parse(doc.createdAt) > CREATE_GRACE_MS ? "create did not finish" : undefined;
  }
  if (!vm) return "no VM or agent recorded";
  const what = featuresOf(vm.driver).isolation === "vm" ? "VM" : "agent";
  if (!vmAlive) return `its ${what} (pid ${main?.pid ?? "unknown"}) is gone`;
  return undefined;
}

// `husk gc`: removes sandboxes left behind by crashes (or by an older release
// that died mid-way), with the same idempotent teardown as delete --force.
export async function collectGarbage(ctx: Context, opts: { dryRun?: boolean } = {}): Promise<GcEntry[]> {
  const out: GcEntry[] = [];
  for (const id of ctx.store.list()) {
    let doc: SandboxDoc | undefined;
    try {
      doc = ctx.store.tryLoad(id);
    } catch (e) {
      out.push({ sandbox: id, reason: "unreadable: left alone (see husk inspect)", removed: false });
      continue;
    }
    const reason = doc && (await garbageReason(ctx, doc));
    if (!reason) continue;
    if (opts.dryRun) {
      out.push({ sandbox: id, reason, removed: false });
      continue;
    }
    try {
      await destroySandbox(ctx, id, { force: true });
      out.push({ sandbox: id, reason, removed: true });
    } catch (e) {
      out.push({ sandbox: id, reason, removed: false, error: errorMessage(e) });
    }
  }
  return out;
}
