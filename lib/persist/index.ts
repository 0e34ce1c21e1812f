// Versioned sandbox documents (persist format 1.x): the only way the runtime
// remembers a sandbox between processes. See docs/on-disk-format.md.
import { FORMATS, type SandboxDoc } from "./formats.ts";
import { RELEASE } from "./codec.ts";

export { openStore, PersistStore, type ContainerDoc, type Found, type OpenOptions } from "./store.ts";
export { FORMATS, FormatChain, type FormatStep, type SandboxDoc } from "./formats.ts";
export {
  ClhVmV1_1 as ClhVmSchema,
  LocalVmV1_1 as LocalVmSchema,
  QemuVmV1_1 as QemuVmSchema,
  VmV1_1 as VmSchema,
} from "./v1_1.ts";
export { PersistError, type PersistFailure } from "./errors.ts";
export { STORE_KINDS, type StoreKind } from "./backend.ts";
export { DEFAULT_LOCK_TIMEOUT_MS, holdMarker, markerAbandoned, type LockOptions, type SandboxLock } from "./lock.ts";
export { MAX_DOC_BYTES, salvage } from "./codec.ts";
export { DOC_FILE } from "./fs.ts";
export { LOCK_FILE } from "./backend.ts";
export { INDEX_DIR } from "./index-dir.ts";
export { DB_FILE } from "./sqlite.ts";

// The typed records of the current format, as the rest of the tree uses them.
export type VmRecord = NonNullable<SandboxDoc["vm"]>;
export type LocalVmRecord = Extract<VmRecord, { driver: "local" }>;
export type QemuVmRecord = Extract<VmRecord, { driver: "qemu" }>;
export type ClhVmRecord = Extract<VmRecord, { driver: "clh" }>;
export type ProcessRef = NonNullable<SandboxDoc["proxy"]>["process"];
export type ProxyRecord = NonNullable<SandboxDoc["proxy"]>;
export type SnapshotRecord = NonNullable<SandboxDoc["snapshots"]>[number];
export type VirtiofsdRecord = NonNullable<QemuVmRecord["virtiofsd"]>;
export type HostCgroupRecord = NonNullable<SandboxDoc["hostCgroup"]>;
export type ShareSlot = NonNullable<SandboxDoc["containers"][number]["shareSlots"]>[number];

// For `husk version --json`.
export const persistFormats = () => ({ writes: FORMATS.current, reads: [FORMATS.readRange] });

// A new sandbox in state "creating", stamped with this release.
export function newSandboxDoc(
  init: Pick<SandboxDoc, "id"> & Partial<SandboxDoc>, // formatVersion and stamps are set here
): SandboxDoc {
  const { id, state = "creating", formatVersion: _, ...rest } = init;
  return {
    formatVersion: FORMATS.current as SandboxDoc["formatVersion"],
    id, // id and state first: what a torn file still shows
    state,
    createdAt: new Date().toISOString(),
    config: {},
    containers: [],
    ...rest,
    createdBy: RELEASE,
    writtenBy: RELEASE,
  };
}
