import type { DriverFeatures } from "../types.ts";

// No VM: the agent is a host process and containers are runc containers.
export const LOCAL_FEATURES: DriverFeatures = {
  isolation: "none",
  sharedFs: false,
  pause: false,
  checkpoint: false,
  hotplug: false,
  networkDevices: false,
  resize: false,
};
