// Hypervisor drivers behind one interface (types.ts). lib/sandbox asks for a
// driver by the name in settings or in a sandbox's VM record, reads its
// features, and never names one itself.
import * as v from "valibot";
import type { Settings } from "../config/index.ts";
import { HuskError, describeIssues } from "../core/index.ts";
import type { VmRecord } from "../persist/index.ts";
import { CLH_FEATURES } from "./clh/features.ts";
import { LOCAL_FEATURES } from "./local/features.ts";
import { QEMU_FEATURES } from "./qemu/features.ts";
import type { DriverFeatures, DriverName, Hypervisor } from "./types.ts";

export * from "./types.ts";
export { resolveDriverName, findExecutable } from "./select.ts";
export { dialUnix } from "./dial.ts";
export {
  canConnect,
  running,
  spawnDetached,
  stopStrays,
  startDaemon,
  launchDaemon,
  stopProcess,
  waitUntil,
  type DaemonSpec,
} from "./process.ts";
export { virtiofsdCommand } from "./virtiofsd.ts";

const FEATURES: Record<DriverName, DriverFeatures> = { local: LOCAL_FEATURES, qemu: QEMU_FEATURES, clh: CLH_FEATURES };

// What a driver can do, without loading its code (`husk state` stays cheap).
export function featuresOf(name: DriverName): DriverFeatures {
  const f = FEATURES[name];
  if (!f) throw new HuskError(`unknown hypervisor driver '${name}'`);
  return f;
}

// The drivers that have a feature, for messages that say where to turn.
export const driversWith = (feature: keyof DriverFeatures): DriverName[] =>
  (Object.keys(FEATURES) as DriverName[]).filter((d) => FEATURES[d][feature] === true);

// Drivers load on demand: a `husk state` never pays for QEMU's code.
export async function driverFor(name: DriverName, settings: Settings): Promise<Hypervisor> {
  switch (name) {
    case "local":
      return (await import("./local/index.ts")).localDriver({ ociRuntime: settings.ociRuntime }) as Hypervisor;
    case "qemu":
      return (await import("./qemu/index.ts")).qemuDriver(settings) as Hypervisor;
    case "clh":
      return (await import("./clh/index.ts")).clhDriver(settings) as Hypervisor;
    default:
      throw new HuskError(`unknown hypervisor driver '${name}'`);
  }
}

// The driver that owns a sandbox's VM record, after checking the record
// against that driver's schema (a record it cannot read is refused by name).
export async function driverOf(vm: VmRecord, settings: Settings, sandboxId: string): Promise<Hypervisor> {
  const driver = await driverFor(vm.driver, settings);
  const r = v.safeParse(driver.schema, vm);
  if (!r.success) throw new HuskError(`sandbox ${sandboxId}: its ${vm.driver} VM record is unusable: ${describeIssues(r.issues)}`);
  return driver;
}

// The VM's driver-specific report for `husk check`.
export async function qemuCheck(settings: Settings, probe = true) {
  return (await import("./qemu/index.ts")).qemuReport(settings, probe);
}
