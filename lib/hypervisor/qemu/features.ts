import type { DriverFeatures } from "../types.ts";

export const QEMU_FEATURES: DriverFeatures = {
  isolation: "vm",
  sharedFs: true,
  pause: true,
  checkpoint: true, // needs QEMU 10 or newer (vhost-user-fs migration): checked when taken
  hotplug: false,
  networkDevices: true, // virtio-net on taps in the sandbox's netns
  resize: false,
};
