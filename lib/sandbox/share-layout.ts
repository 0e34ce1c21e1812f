import { existsSync } from "node:fs";
import { ErrorCode, HuskError } from "../core/index.ts";
import { isBindMount, loadBundle, type Bundle, type MountSpec } from "../oci/index.ts";
import type { SandboxDoc, ShareSlot } from "../persist/index.ts";

// Where each container's bind mounts sit in its share (mounts/<slot>), as the
// guest mounted them: at create, slot i holds the bundle's mount i. A
// checkpoint records the slots in the document it saves, so that a restore
// from a bundle a client wrote anew (podman's restore --import lists the
// same mounts in another order) binds every source where the guest looks.

// A bind of a host path: the only kind of mount the guest reaches through the share.
export const isSharedMount = (m: MountSpec): boolean => isBindMount(m) && !!m.source?.startsWith("/") && existsSync(m.source);

const slotsOf = (bundle: Bundle): ShareSlot[] =>
  (bundle.spec.mounts ?? []).flatMap((m, slot) => (isSharedMount(m) ? [{ slot, destination: m.destination }] : []));

// Before a checkpoint: every container's slots, from its bundle unless a
// restore already recorded them. A bundle that is gone records none (a
// restore then binds in the order of the bundle it is given).
export function recordShareSlots(doc: SandboxDoc): void {
  for (const c of doc.containers) {
    if (c.shareSlots || !existsSync(c.bundle)) continue;
    c.shareSlots = slotsOf(loadBundle(c.bundle));
  }
}

// For a container's bundle as it is now: its mount index -> the slot the
// saved guest mounted the same destination from (the k-th bind of a
// destination goes where the k-th was). A destination the guest mounted
// that the bundle no longer binds is refused by name; a bind it gained is
// left out, since a running container cannot take a new mount.
export function placeMounts(containerId: string, bundle: Bundle, saved: ShareSlot[]): Map<number, number> {
  const free = new Map<string, number[]>();
  for (const s of saved) free.set(s.destination, [...(free.get(s.destination) ?? []), s.slot]);
  const placed = new Map<number, number>();
  (bundle.spec.mounts ?? []).forEach((m, i) => {
    const slot = isSharedMount(m) ? free.get(m.destination)?.shift() : undefined;
    if (slot !== undefined) placed.set(i, slot);
  });
  const missing = [...free].filter(([, slots]) => slots.length).map(([d]) => d);
  if (missing.length)
    throw new HuskError(`restore: container ${containerId}'s bundle no longer binds ${missing.join(", ")}, which its checkpointed guest has mounted`, {
      code: ErrorCode.FailedPrecondition,
    });
  return placed;
}
