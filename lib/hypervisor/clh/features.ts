import type { DriverFeatures } from "../types.ts";

export const CLH_FEATURES: DriverFeatures = {
  isolation: "vm",
  sharedFs: true,
  pause: true,
  checkpoint: true,
  hotplug: false,
  networkDevices: false,
  resize: false,
};
