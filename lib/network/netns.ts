import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { ErrorCode, HuskError } from "../core/index.ts";

// What a network namespace holds, read with iproute2's JSON output inside it
// (nsenter --net: the namespace work happens in a child, never in husk).

export interface NetIface {
  name: string;
  mac: string;
  mtu: number;
  kind: string; // veth, macvlan, ... ("device" for a physical one)
  linkType: string; // "ether" for the interfaces a VM can take over
  addresses: string[]; // CIDR, scope global
}

export type NetRoute = {
  destination: string; // "default" or CIDR
  gateway?: string;
  device?: string;
  family: 4 | 6;
};

export interface NetnsView {
  interfaces: NetIface[];
  routes: NetRoute[];
}

// Runs a command inside the namespace; throws with what it printed.
export function inNetns(netns: string, cmd: string[]): string {
  const r = spawnSync("nsenter", [`--net=${netns}`, ...cmd], { encoding: "utf8", timeout: 10_000 });
  if (r.status !== 0)
    throw new HuskError(`${cmd.join(" ")} in network namespace ${netns}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`, {
      code: ErrorCode.Unavailable,
    });
  return r.stdout;
}

const json = <T>(netns: string, args: string[]): T[] => JSON.parse(inNetns(netns, ["ip", "-j", ...args]) || "[]") as T[];

type IpLink = { ifname: string; address?: string; mtu: number; link_type: string; linkinfo?: { info_kind?: string } };
type IpAddr = { ifname: string; addr_info: { family: string; local: string; prefixlen: number; scope: string }[] };
type IpRoute = { dst: string; gateway?: string; dev?: string; protocol?: string };

function routes(netns: string, family: 4 | 6): NetRoute[] {
  return json<IpRoute>(netns, [`-${family}`, "route", "show"])
    .filter((r) => r.protocol !== "kernel" && !r.dst.startsWith("fe80:") && !r.dst.startsWith("multicast"))
    .map((r) => ({ destination: r.dst, ...(r.gateway ? { gateway: r.gateway } : {}), ...(r.dev ? { device: r.dev } : {}), family }));
}

export function readNetns(netns: string): NetnsView {
  if (!existsSync(netns)) throw new HuskError(`network namespace ${netns} does not exist`, { code: ErrorCode.NotFound });
  const addrs = new Map(json<IpAddr>(netns, ["addr", "show"]).map((a) => [a.ifname, a.addr_info]));
  const interfaces = json<IpLink>(netns, ["-d", "link", "show"])
    .filter((l) => l.ifname !== "lo" && !l.ifname.endsWith("_husk"))
    .map((l) => ({
      name: l.ifname,
      mac: l.address ?? "",
      mtu: l.mtu,
      kind: l.linkinfo?.info_kind ?? "device",
      linkType: l.link_type,
      addresses: (addrs.get(l.ifname) ?? [])
        .filter((a) => a.scope === "global")
        .map((a) => `${a.local}/${a.prefixlen}`),
    }));
  return { interfaces, routes: [...routes(netns, 4), ...routes(netns, 6)] };
}
