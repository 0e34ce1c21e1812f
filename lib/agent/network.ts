import { readdirSync, readFileSync } from "node:fs";
import { ErrorCode, HuskError } from "../core/index.ts";
import type { ConfigureNetworkRequest } from "../protocol/index.ts";

// The guest end of the sandbox's network: each virtio-net device carries the
// MAC of a host interface; it is renamed to that interface's name and given
// its MTU, addresses and routes, so containers see what runc would show them.

const SYS_NET = "/sys/class/net";

type Nics = ConfigureNetworkRequest["interfaces"];

function deviceWithMac(mac: string): string {
  const want = mac.toLowerCase();
  for (const dev of readdirSync(SYS_NET)) {
    try {
      if (readFileSync(`${SYS_NET}/${dev}/address`, "utf8").trim().toLowerCase() === want) return dev;
    } catch {}
  }
  throw new HuskError(`no network device with MAC ${mac} in the guest (found: ${readdirSync(SYS_NET).join(", ")})`, {
    code: ErrorCode.NotFound,
  });
}

async function ip(args: string[]): Promise<void> {
  const p = Bun.spawn(["ip", ...args], { stdout: "ignore", stderr: "pipe" });
  if ((await p.exited) !== 0)
    throw new HuskError(`ip ${args.join(" ")}: ${(await new Response(p.stderr).text()).trim()}`, { code: ErrorCode.InvalidArgument });
}

// A device restored from a template (or a checkpoint whose namespace
// changed) carries another MAC (guestMac): it takes the host interface's,
// which the tc redirect and the peer expect.
async function remac(nics: Nics, devs: string[]): Promise<void> {
  for (const [i, dev] of devs.entries()) {
    const n = nics[i]!;
    if (n.guestMac && n.guestMac.toLowerCase() !== n.mac.toLowerCase()) await ip(["link", "set", "dev", dev, "address", n.mac]);
  }
}

// Devices configured before lose what they had: down (a renamed device must
// be), then their addresses and the routes through them. Flushing nothing succeeds.
async function clear(devs: string[]): Promise<void> {
  for (const dev of devs) {
    await ip(["link", "set", "dev", dev, "down"]);
    await ip(["addr", "flush", "dev", dev]);
    for (const family of ["-4", "-6"]) await ip([family, "route", "flush", "dev", dev]);
  }
}

// Devices get their names in two steps, so that swapping names (the host's
// eth1 is the guest's eth0) never collides with a device not yet renamed.
async function rename(nics: Nics, devs: string[]): Promise<void> {
  for (const [i, dev] of devs.entries()) if (dev !== nics[i]!.name) await ip(["link", "set", "dev", dev, "name", `husknet${i}`]);
  for (const [i, dev] of devs.entries()) if (dev !== nics[i]!.name) await ip(["link", "set", "dev", `husknet${i}`, "name", nics[i]!.name]);
}

export async function configureNetwork(req: ConfigureNetworkRequest): Promise<void> {
  await ip(["link", "set", "lo", "up"]);
  const devs = req.interfaces.map((n) => deviceWithMac(n.guestMac || n.mac));
  if (req.replace) await clear(devs);
  await remac(req.interfaces, devs);
  await rename(req.interfaces, devs);
  for (const nic of req.interfaces) {
    if (nic.mtu) await ip(["link", "set", "dev", nic.name, "mtu", String(nic.mtu)]);
    for (const a of nic.addresses) await ip([a.includes(":") ? "-6" : "-4", "addr", "add", a, "dev", nic.name]);
    await ip(["link", "set", "dev", nic.name, "up"]);
  }
  for (const r of req.routes) {
    const via = r.gateway ? ["via", r.gateway] : [];
    await ip([r.family === 6 ? "-6" : "-4", "route", "add", r.destination, ...via, ...(r.device ? ["dev", r.device] : [])]);
  }
}
