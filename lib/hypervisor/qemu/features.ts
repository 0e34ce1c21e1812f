import type { DriverFeatures } from "../types.ts";

export const QEMU_FEATURES: DriverFeatures = {
  isolation: "vm",
  sharedFs: true,
  pause: true,
  checkpoint: false, // QEMU snapshots are not built yet
  hotplug: false,
  networkDevices: true, // virtio-net on taps in the sandbox's netns
  resize: false,
};
