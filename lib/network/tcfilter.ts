import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { ErrorCode, HuskError, errorMessage, log } from "../core/index.ts";
import { inNetns, type NetIface } from "./netns.ts";

// Each interface of the netns is joined to a tap device beside it, which the
// VMM opens: a tc ingress filter on either side redirects every frame to the
// other (the model Kata calls "tcfilter"). The interface keeps its address and
// MAC; the guest's device gets the same MAC, so ARP and the bridge see one
// endpoint. Nothing else in the netns changes, and teardown undoes exactly this.

export const tapName = (index: number) => `tap${index}_husk`;

const MIRRORABLE_KINDS = new Set(["veth", "macvlan", "macvtap", "device", "bridge", "vlan", "bond", "dummy"]);

// virtio-net takes a unicast MAC and an MTU between the IPv4 minimum and its
// 16-bit limit; anything else would be refused by QEMU or the guest later,
// after the VM booted. Refused here, before anything is attached.
const MIN_MTU = 68;
const MAX_MTU = 65535;
const UNICAST_MAC = /^[0-9a-f][02468ace](:[0-9a-f]{2}){5}$/i;

export function checkMirrorable(i: NetIface): void {
  const refuse = (why: string) => new HuskError(`interface ${i.name} cannot be mirrored into a VM: ${why}`, { code: ErrorCode.InvalidArgument });
  if (i.linkType !== "ether" || !MIRRORABLE_KINDS.has(i.kind))
    throw new HuskError(
      `interface ${i.name} (${i.kind}, link type ${i.linkType}) cannot be mirrored into a VM: only Ethernet interfaces (veth, macvlan, ...) can`,
      { code: ErrorCode.Unimplemented },
    );
  if (!UNICAST_MAC.test(i.mac) || i.mac === "00:00:00:00:00:00") throw refuse(`its MAC ${JSON.stringify(i.mac)} is not a unicast Ethernet address`);
  if (!Number.isInteger(i.mtu) || i.mtu < MIN_MTU || i.mtu > MAX_MTU) throw refuse(`its MTU ${i.mtu} is outside ${MIN_MTU}-${MAX_MTU}`);
}

const redirect = (from: string, to: string) =>
  ["tc", "filter", "add", "dev", from, "parent", "ffff:", "protocol", "all", "u32", "match", "u8", "0", "0", "action", "mirred", "egress", "redirect", "dev", to];

// Creates the tap for `iface` and the redirects both ways; undone on failure.
export function attachTap(netns: string, iface: Pick<NetIface, "name" | "mtu">, tap: string): void {
  const steps = [
    ["ip", "tuntap", "add", "dev", tap, "mode", "tap"],
    ["ip", "link", "set", "dev", tap, "mtu", String(iface.mtu), "up"],
    ["tc", "qdisc", "add", "dev", iface.name, "ingress"],
    ["tc", "qdisc", "add", "dev", tap, "ingress"],
    redirect(iface.name, tap),
    redirect(tap, iface.name),
  ];
  try {
    for (const s of steps) inNetns(netns, s);
  } catch (e) {
    detachTap(netns, iface.name, tap);
    throw e;
  }
}

// Idempotent: what is already gone (or the whole netns) is not an error.
export function detachTap(netns: string, iface: string, tap: string): void {
  for (const s of [["tc", "qdisc", "del", "dev", iface, "ingress"], ["ip", "link", "del", "dev", tap]]) {
    try {
      inNetns(netns, s);
    } catch (e) {
      log.debug(`network teardown: ${errorMessage(e)}`);
    }
  }
}

// A namespace of its own holding `count` taps nothing is joined to: where a
// VM template's placeholder devices live while it is built. No frame leaves
// it; deleting it takes the taps along.
export function scratchNetns(name: string, count: number): { netns: string; taps: string[]; remove(): void } {
  const netns = `/run/netns/${name}`;
  const remove = () => dropScratchNetns(name);
  remove(); // one a crashed build left
  const made = spawnSync("ip", ["netns", "add", name], { encoding: "utf8" });
  if (made.status !== 0) throw new HuskError(`ip netns add ${name}: ${(made.stderr || made.error?.message || "").trim()}`, { code: ErrorCode.Unavailable });
  const taps = Array.from({ length: count }, (_, i) => tapName(i));
  try {
    for (const tap of taps) {
      inNetns(netns, ["ip", "tuntap", "add", "dev", tap, "mode", "tap"]);
      inNetns(netns, ["ip", "link", "set", "dev", tap, "up"]);
    }
  } catch (e) {
    remove();
    throw e;
  }
  return { netns, taps, remove };
}

// Idempotent: a namespace that is not there is already gone.
export function dropScratchNetns(name: string): void {
  if (existsSync(`/run/netns/${name}`)) spawnSync("ip", ["netns", "del", name], { stdio: "ignore" });
}
