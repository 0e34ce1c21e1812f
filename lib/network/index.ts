// The network namespace a client (podman, containerd's CNI, kubelet) prepared
// for a container, carried into a micro-VM: read it, join each interface to a
// tap the VMM opens, and undo that at teardown. See docs/networking.md.
import { statSync } from "node:fs";
import { ErrorCode, HuskError } from "../core/index.ts";
import type { Spec } from "../oci/index.ts";
import type { SandboxDoc } from "../persist/index.ts";
import { readNetns } from "./netns.ts";
import { attachTap, checkMirrorable, detachTap, tapName } from "./tcfilter.ts";

export { readNetns, inNetns, type NetIface, type NetRoute, type NetnsView } from "./netns.ts";
export { checkMirrorable, dropScratchNetns, scratchNetns, tapName } from "./tcfilter.ts";

export type NetworkRecord = NonNullable<SandboxDoc["network"]>;

// What the spec asks for: a netns to carry in (its path), a new empty one
// (only lo), or none at all: the host's network, which a VM cannot join.
export function networkPlan(spec: Spec, sandboxId: string): { mode: "netns"; netns: string } | { mode: "none" } {
  const ns = spec.linux?.namespaces?.find((n) => n.type === "network");
  if (!ns)
    throw new HuskError(
      `sandbox ${sandboxId}: the spec shares the host's network (no network namespace in linux.namespaces), which a VM sandbox cannot join; give it a network namespace`,
      { code: ErrorCode.Unimplemented },
    );
  return ns.path ? { mode: "netns", netns: ns.path } : { mode: "none" };
}

// The host's own namespace (a path like /proc/<pid>/ns/net naming a host
// process): mirroring it would hand the host's interfaces to a VM.
function isHostNetns(netns: string): boolean {
  try {
    const a = statSync(netns);
    const b = statSync("/proc/self/ns/net"); // husk runs in the host's namespace
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}

// Reads the netns and names a tap for each interface: the record says what
// attachNetwork will make, so it can be saved (and undone after a crash)
// before anything is made.
export function planNetwork(netns: string): NetworkRecord {
  if (isHostNetns(netns))
    throw new HuskError(`network namespace ${netns} is the host's: a VM sandbox cannot join it`, { code: ErrorCode.PermissionDenied });
  const view = readNetns(netns);
  view.interfaces.forEach(checkMirrorable);
  const interfaces = view.interfaces.map((i, n) => ({ name: i.name, mac: i.mac, mtu: i.mtu, addresses: i.addresses, tap: tapName(n) }));
  return { mode: "netns", netns, interfaces, routes: view.routes }; // NetRoute is the record's shape
}

// Attaches each planned tap to its interface. A failure leaves the netns as it was.
export function attachNetwork(rec: NetworkRecord): void {
  const done: { name: string; tap: string }[] = [];
  try {
    for (const i of rec.interfaces ?? []) {
      attachTap(rec.netns!, { name: i.name!, mtu: i.mtu ?? 1500 }, i.tap!);
      done.push({ name: i.name!, tap: i.tap! });
    }
  } catch (e) {
    for (const d of done) detachTap(rec.netns!, d.name, d.tap);
    throw e;
  }
}

// Removes the taps and filters; the client's netns and veth stay as found.
export function releaseNetwork(rec: NetworkRecord | undefined): void {
  if (!rec?.netns) return;
  for (const i of rec.interfaces ?? []) if (i.tap) detachTap(rec.netns, i.name, i.tap);
}

// The taps a VMM opens for the record's interfaces (a VmSpec's network).
export function tapsOf(rec: NetworkRecord | undefined): { netns: string; nics: { tap: string; mac: string; mtu: number }[] } | undefined {
  if (!rec?.interfaces?.length) return undefined;
  return { netns: rec.netns!, nics: rec.interfaces.map((i) => ({ tap: i.tap!, mac: i.mac!, mtu: i.mtu ?? 1500 })) };
}

// A restored guest has one device per interface it was saved with, device i
// behind tap i: `now` is put in `was`'s order where names match, so a
// namespace that lists the same interfaces in another order changes nothing.
export function alignNetwork(was: NetworkRecord, now: NetworkRecord): NetworkRecord {
  const order = (was.interfaces ?? []).map((i) => i.name ?? "");
  const rank = (name = "") => (order.includes(name) ? order.indexOf(name) : order.length);
  const interfaces = [...(now.interfaces ?? [])].sort((a, b) => rank(a.name) - rank(b.name)).map((i, n) => ({ ...i, tap: tapName(n) }));
  return { ...now, interfaces };
}

// What a guest configured from `was` would find different in `now`, or ""
// when nothing: interface names, MACs, MTUs, addresses, routes.
export function networkChange(was: NetworkRecord, now: NetworkRecord): string {
  const seen = (r: NetworkRecord) => new Map((r.interfaces ?? []).map((i) => [i.name!, i]));
  const [before, after] = [seen(was), seen(now)];
  const changes: string[] = [];
  for (const [name, i] of before) {
    const j = after.get(name);
    if (!j) changes.push(`${name} is gone`);
    else if (i.mac?.toLowerCase() !== j.mac?.toLowerCase()) changes.push(`${name}'s MAC is ${j.mac}, was ${i.mac}`);
    else if (i.mtu !== j.mtu) changes.push(`${name}'s MTU is ${j.mtu}, was ${i.mtu}`);
    else if ([...(i.addresses ?? [])].sort().join() !== [...(j.addresses ?? [])].sort().join())
      changes.push(`${name}'s addresses are ${(j.addresses ?? []).join(", ") || "none"}, were ${(i.addresses ?? []).join(", ") || "none"}`);
  }
  for (const name of after.keys()) if (!before.has(name)) changes.push(`${name} is new`);
  const routes = (r: NetworkRecord) => JSON.stringify((r.routes ?? []).map((x) => [x.destination, x.gateway ?? "", x.device ?? "", x.family]).sort());
  if (!changes.length && routes(was) !== routes(now)) changes.push("its routes differ");
  return changes.join("; ");
}
