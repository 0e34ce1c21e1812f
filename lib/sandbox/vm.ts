import { ErrorCode, HuskError, terminate } from "../core/index.ts";
import { driverOf, running, type Hypervisor } from "../hypervisor/index.ts";
import type { SandboxDoc, VmRecord } from "../persist/index.ts";
import type { Context } from "./context.ts";

export function vmOf(doc: SandboxDoc): VmRecord {
  if (!doc.vm)
    throw new HuskError(`sandbox ${doc.id} has no running VM or agent (state ${doc.state})`, { code: ErrorCode.FailedPrecondition });
  return doc.vm;
}

export const driverOfDoc = (ctx: Context, doc: SandboxDoc): Promise<Hypervisor> =>
  driverOf(vmOf(doc), ctx.settings, doc.id);

// Whether every host process the guest's containers need still runs (/proc only).
export const vmAlive = (driver: Hypervisor, vm: VmRecord): boolean => driver.vitals(vm).every((p) => running(p));

// A sandbox whose VM lost a vital process: nothing in it can be asked.
export const vmLost = async (ctx: Context, doc: SandboxDoc): Promise<boolean> =>
  !!doc.vm && !vmAlive(await driverOfDoc(ctx, doc), doc.vm);

// What is left of a VM that lost a vital process is killed: a VMM without its
// virtiofsd would leave containers running on a root they can no longer read.
export async function killRemains(driver: Hypervisor, vm: VmRecord): Promise<void> {
  for (const p of driver.vitals(vm)) if (running(p)) await terminate(p.pid, p.startTime, 0);
}
