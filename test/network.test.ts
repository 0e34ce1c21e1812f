import { describe, expect, test } from "vitest";
import { alignNetwork, checkMirrorable, networkChange, networkPlan, type NetIface, type NetworkRecord } from "../lib/network/index.ts";
import { defaultSpec } from "../lib/oci/index.ts";

// What a VM sandbox takes from the client's netns, checked before anything is
// attached (the end-to-end behaviour is in test/e2e/network.test.ts).
const veth = (over: Partial<NetIface> = {}): NetIface => ({
  name: "eth0", mac: "02:42:0a:59:00:02", mtu: 1500, kind: "veth", linkType: "ether", addresses: ["10.89.0.2/24"], ...over,
});

describe("interfaces a VM can take over", () => {
  test("an Ethernet veth, macvlan or physical device", () => {
    for (const kind of ["veth", "macvlan", "device"]) expect(() => checkMirrorable(veth({ kind }))).not.toThrow();
  });

  test.each([
    [{ kind: "tun", linkType: "none" }, "interface eth0 (tun, link type none) cannot be mirrored into a VM: only Ethernet interfaces (veth, macvlan, ...) can"],
    [{ kind: "ipip", linkType: "ipip" }, "interface eth0 (ipip, link type ipip) cannot be mirrored"],
    [{ mac: "01:00:5e:00:00:01" }, 'interface eth0 cannot be mirrored into a VM: its MAC "01:00:5e:00:00:01" is not a unicast Ethernet address'],
    [{ mac: "00:00:00:00:00:00" }, "is not a unicast Ethernet address"],
    [{ mac: "" }, 'its MAC "" is not a unicast'],
    [{ mtu: 67 }, "interface eth0 cannot be mirrored into a VM: its MTU 67 is outside 68-65535"],
    [{ mtu: 65536 }, "its MTU 65536 is outside 68-65535"],
  ] as const)("refused by name: %o", (over, message) => {
    expect(() => checkMirrorable(veth(over))).toThrow(message);
  });
});

describe("the network a spec asks for", () => {
  const spec = (namespaces: { type: string; path?: string }[]) => ({ ...defaultSpec(), linux: { namespaces } });

  test("a path: that netns; no path: a new one with only lo; none: the host's, refused", () => {
    expect(networkPlan(spec([{ type: "network", path: "/run/netns/x" }]) as never, "s")).toEqual({ mode: "netns", netns: "/run/netns/x" });
    expect(networkPlan(spec([{ type: "network" }]) as never, "s")).toEqual({ mode: "none" });
    expect(() => networkPlan(spec([{ type: "pid" }]) as never, "s")).toThrow(/sandbox s: the spec shares the host's network/);
  });
});

describe("a checkpoint's network against the namespace it is restored into", () => {
  const nic = (name: string, mac: string, addresses: string[], tap: string) => ({ name, mac, mtu: 1500, addresses, tap });
  const rec = (...interfaces: ReturnType<typeof nic>[]): NetworkRecord => ({ mode: "netns", netns: "/run/netns/x", interfaces, routes: [] });
  const was = rec(nic("eth0", "02:00:00:00:00:01", ["10.0.0.2/24"], "tap0_husk"), nic("eth1", "02:00:00:00:00:02", ["10.1.0.2/24"], "tap1_husk"));

  test("the same interfaces listed in another order: no change, and device k's tap is beside the interface it was saved with", () => {
    const now = alignNetwork(was, rec(nic("eth1", "02:00:00:00:00:02", ["10.1.0.2/24"], "tap0_husk"), nic("eth0", "02:00:00:00:00:01", ["10.0.0.2/24"], "tap1_husk")));
    expect(now.interfaces).toEqual(was.interfaces);
    expect(networkChange(was, now)).toBe("");
  });

  test("changes are named: an address, a MAC, an interface more", () => {
    const moved = alignNetwork(was, rec(nic("eth0", "02:00:00:00:00:09", ["10.0.0.7/24"], "tap0_husk"), nic("eth1", "02:00:00:00:00:02", ["10.1.0.2/24"], "tap1_husk")));
    expect(networkChange(was, moved)).toBe("eth0's MAC is 02:00:00:00:00:09, was 02:00:00:00:00:01");
    const more = alignNetwork(was, rec(nic("eth2", "02:00:00:00:00:03", [], "tap0_husk"), nic("eth0", "02:00:00:00:00:01", ["10.0.0.2/24"], "tap1_husk"), nic("eth1", "02:00:00:00:00:02", ["10.1.0.2/24"], "tap2_husk")));
    expect(more.interfaces!.map((i) => [i.name, i.tap])).toEqual([["eth0", "tap0_husk"], ["eth1", "tap1_husk"], ["eth2", "tap2_husk"]]);
    expect(networkChange(was, more)).toBe("eth2 is new");
  });
});
