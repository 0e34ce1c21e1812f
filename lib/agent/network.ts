import { readdirSync, readFileSync } from "node:fs";
import { ErrorCode, HuskError } from "../core/index.ts";
import type { ConfigureNetworkRequest } from "../protocol/index.ts";

// The guest end of the sandbox's network: each virtio-net device carries the
// MAC of a host interface; it is renamed to that interface's name and given
// its MTU, addresses and routes, so containers see what runc would show them.

const SYS_NET = "/sys/class/net";

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

export async function configureNetwork(req: ConfigureNetworkRequest): Promise<void> {
  await ip(["link", "set", "lo", "up"]);
  for (const nic of req.interfaces) {
    const dev = deviceWithMac(nic.mac);
    if (dev !== nic.name) await ip(["link", "set", "dev", dev, "name", nic.name]);
    if (nic.mtu) await ip(["link", "set", "dev", nic.name, "mtu", String(nic.mtu)]);
    for (const a of nic.addresses) await ip([a.includes(":") ? "-6" : "-4", "addr", "add", a, "dev", nic.name]);
    await ip(["link", "set", "dev", nic.name, "up"]);
  }
  for (const r of req.routes) {
    const via = r.gateway ? ["via", r.gateway] : [];
    await ip([r.family === 6 ? "-6" : "-4", "route", "add", r.destination, ...via, ...(r.device ? ["dev", r.device] : [])]);
  }
}
