import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { errorMessage, validateId } from "../core/index.ts";
import { driverFor, featuresOf, running } from "../hypervisor/index.ts";
import { LOCK_FILE, markerAbandoned, type SandboxDoc } from "../persist/index.ts";
import type { Context } from "./context.ts";
import { CREATE_MARKER } from "./create-sandbox.ts";
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
// `creatorGone`: the create's marker (create.lock) is there and nobody holds
// it, so the create that was making this sandbox died.
export async function garbageReason(ctx: Context, doc: SandboxDoc, now = Date.now(), creatorGone?: boolean): Promise<string | undefined> {
  const vm = doc.vm;
  const main = vm && (await driverFor(vm.driver, ctx.settings)).mainProcess(vm);
  const vmAlive = running(main);
  if (doc.state === "creating") {
    if (creatorGone) return "create crashed: the husk create that was making it is gone";
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
  const remove = async (sandbox: string, reason: string, onlyDebris = false) => {
    if (opts.dryRun) return void out.push({ sandbox, reason, removed: false });
    try {
      await destroySandbox(ctx, sandbox, { force: true, onlyDebris });
      out.push({ sandbox, reason, removed: true });
    } catch (e) {
      out.push({ sandbox, reason, removed: false, error: errorMessage(e) });
    }
  };
  const listed = ctx.store.list();
  for (const id of listed) {
    // Asked before the document is read: a create that finishes in between
    // has saved "running" before it let go of its marker.
    const creatorGone = markerAbandoned(join(ctx.store.sandboxDir(id), CREATE_MARKER));
    let doc: SandboxDoc | undefined;
    try {
      doc = ctx.store.tryLoad(id);
    } catch (e) {
      out.push({ sandbox: id, reason: "unreadable: left alone (see husk inspect)", removed: false });
      continue;
    }
    const reason = doc && (await garbageReason(ctx, doc, Date.now(), creatorGone));
    if (reason) await remove(id, reason);
  }
  for (const id of debris(ctx, listed)) await remove(id, "a directory without a document (a create died in its first save)", true);
  return out;
}

// Sandbox directories without a document, whose lock nobody holds.
function debris(ctx: Context, listed: readonly string[]): string[] {
  let names: string[];
  try {
    names = readdirSync(ctx.store.root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
  return names.filter((n) => {
    if (listed.includes(n)) return false;
    try {
      validateId(n, "sandbox");
    } catch {
      return false; // +containers, and anything husk did not make
    }
    return existsSync(join(ctx.store.root, n, LOCK_FILE)) && markerAbandoned(join(ctx.store.root, n, LOCK_FILE)) !== false;
  });
}
