import type { Rootfs } from "../protocol/index.ts";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { RootfsSchema } from "../protocol/index.ts";
import type { SandboxDoc } from "../persist/index.ts";
import type { Bundle } from "../oci/index.ts";

export type RootfsInit = MessageInitShape<typeof RootfsSchema>;

// How the agent reaches a container's root filesystem. With `local` the agent
// runs on the host and uses the bundle's rootfs in place.
export function shareRootfs(doc: SandboxDoc, _containerId: string, bundle: Bundle): RootfsInit {
  return { source: { case: "path", value: bundle.rootfs }, readonly: bundle.spec.root?.readonly === true };
}

// Undo every share of a sandbox (bind mounts under its shared directory).
export function unshareAll(_sandboxDir: string): void {}

export type { Rootfs };
