import { OCI_SPEC_VERSION } from "../core/index.ts";
import type { ContainerStatus } from "./status.ts";

// `husk state` output: runtime-spec state plus the fields runc adds
// (rootfs, created, owner), which containerd and podman read.
export interface StateJson {
  ociVersion: string;
  id: string;
  status: ContainerStatus;
  pid: number;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

export function stateJson(c: {
  id: string;
  status: ContainerStatus;
  pid: number;
  bundle: string;
  rootfs: string;
  createdAt: string;
  annotations?: Record<string, string>;
}): StateJson {
  const s: StateJson = {
    ociVersion: OCI_SPEC_VERSION,
    id: c.id,
    status: c.status,
    pid: c.status === "stopped" ? 0 : c.pid,
    bundle: c.bundle,
    rootfs: c.rootfs,
    created: c.createdAt,
    owner: "",
  };
  if (c.annotations && Object.keys(c.annotations).length) s.annotations = c.annotations;
  return s;
}
