import { ErrorCode, HuskError } from "../core/index.ts";
import type { Spec } from "../oci/index.ts";

// A namespace type missing from linux.namespaces means the host's own (runc
// leaves the container in it). A VM cannot give a container the host's
// processes, IPC objects or hostname, so a VM sandbox refuses such a spec by
// name rather than quietly handing it the guest's. The network is refused
// the same way where it is planned (lib/network).
const HOST_SHAREABLE = ["pid", "ipc", "uts"] as const;

export function refuseHostNamespaces(spec: Spec, what: string): void {
  const present = new Set((spec.linux?.namespaces ?? []).map((n) => n.type));
  const missing = HOST_SHAREABLE.filter((t) => !present.has(t));
  if (!missing.length) return;
  const names = missing.join(", ");
  throw new HuskError(
    `${what}: the spec shares the host's ${names} namespace${missing.length > 1 ? "s" : ""} (not in linux.namespaces), which a VM sandbox cannot join; give the container its own`,
    { code: ErrorCode.Unimplemented },
  );
}
