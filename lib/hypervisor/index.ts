import type { Settings } from "../config/index.ts";
import { HuskError } from "../core/index.ts";
import { localDriver } from "./local/index.ts";
import type { DriverName, Hypervisor } from "./types.ts";

export * from "./types.ts";
export { resolveDriverName, findExecutable } from "./select.ts";
export { dialUnix } from "./local/index.ts";

// Drivers load on demand: a `husk state` never pays for QEMU's code.
export async function driverFor(name: DriverName, settings: Settings): Promise<Hypervisor> {
  switch (name) {
    case "local":
      return localDriver({ ociRuntime: settings.ociRuntime });
    case "qemu":
      return (await import("./qemu/index.ts")).qemuDriver(settings);
    case "clh":
      return (await import("./clh/index.ts")).clhDriver(settings);
    default:
      throw new HuskError(`unknown hypervisor driver '${name}'`);
  }
}
