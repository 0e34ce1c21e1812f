// Guest image assembly: kernel, initramfs, modules, and the host-side helpers
// (virtiofsd) that go with a given asset version.
export { buildGuest, GUEST_CMDLINE, type GuestBuildOptions, type GuestBuildResult } from "./build.ts";
export {
  defaultGuestVersion,
  listGuestVersions,
  readManifest,
  resolveGuestAssets,
  assetsFromManifest,
  ManifestSchema,
  MANIFEST_NAME,
  type GuestAssets,
  type Manifest,
} from "./manifest.ts";
export {
  AGENT_IN_SHARE,
  AGENT_PORT_NAME,
  GUEST_NETNS,
  GUEST_PROBE_MARK,
  GUEST_READY_MARK,
  GUEST_SHARE_MOUNT,
  GUEST_SHARE_TAG,
} from "./init.ts";
export { bootableAssets, verifiedCacheFile, verifyGuestAssets } from "./verify.ts";
export { extractVmlinux } from "./vmlinux.ts";
export { writeCpio, type CpioEntry } from "./cpio.ts";
export { guestModules, moduleLine, resolveModules, GUEST_MODULES } from "./modules.ts";
