// Host -> container network, side by side in one run: runc (the container's
// netns is the veth's) and husk qemu (the veth's traffic redirected to a tap
// into the VM). Round-trip time (busybox ping) and TCP throughput (curl of a
// 32 MiB file from busybox httpd). All inside network namespaces made here.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeBusyboxBundle } from "../test/helpers/bundle.ts";

const HUSK = join(import.meta.dirname, "..", "dist", "husk");
const GUEST_DIR = process.env.HUSK_TEST_GUEST_DIR ?? "/var/tmp/husk-test-guest";
const work = mkdtempSync(join(tmpdir(), "husk-bench-net-"));
// Detached containers keep their stdio: `detach` commands get none to hold.
const sh = (cmd: string[], env: Record<string, string> = {}, detach = false) => {
  const stdio = detach ? "ignore" : "pipe";
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: "utf8", env: { ...process.env, ...env }, timeout: 300_000, stdio });
  if (r.status !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr ?? `exit ${r.status}`}`);
  return r.stdout ?? "";
};

// Two namespaces joined by a veth: "h" plays the host, "c" the container's netns.
function pair(tag: string): { host: string; ctr: string } {
  const [h, c] = [`hb-${tag}-${process.pid}`, `cb-${tag}-${process.pid}`];
  for (const ns of [h, c]) sh(["ip", "netns", "add", ns]);
  sh(["ip", "link", "add", "vh", "netns", h, "type", "veth", "peer", "name", "eth0", "netns", c]);
  for (const [ns, dev, addr] of [[h, "vh", "10.66.0.1/24"], [c, "eth0", "10.66.0.2/24"]] as const) {
    sh(["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
    for (const d of ["lo", dev]) sh(["ip", "-n", ns, "link", "set", d, "up"]);
  }
  return { host: h, ctr: c };
}

function bundle(name: string, netns: string): string {
  const script = "head -c 33554432 /dev/zero > /tmp/f && httpd -f -p 8080 -h /tmp";
  const b = makeBusyboxBundle(join(work, name), { args: ["sh", "-c", script] });
  const spec = JSON.parse(readFileSync(join(b, "config.json"), "utf8"));
  spec.linux.namespaces = spec.linux.namespaces.map((n: { type: string }) => (n.type === "network" ? { type: "network", path: `/run/netns/${netns}` } : n));
  writeFileSync(join(b, "config.json"), JSON.stringify(spec));
  return b;
}

function measure(hostNs: string): { rttMs: number; mbps: number } {
  const inHost = (cmd: string[]) => sh(["nsenter", `--net=/run/netns/${hostNs}`, ...cmd]);
  for (let i = 0; i < 600 && spawnSync("nsenter", [`--net=/run/netns/${hostNs}`, "curl", "-sf", "-m", "2", "-o", "/dev/null", "http://10.66.0.2:8080/f"]).status !== 0; i++)
    Bun.sleepSync(200);
  const ping = inHost(["busybox", "ping", "-c", "20", "-i", "0.2", "10.66.0.2"]);
  const rttMs = Number(/= [\d.]+\/([\d.]+)\//.exec(ping)?.[1]);
  const speeds = [1, 2, 3].map(() => Number(inHost(["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download}", "http://10.66.0.2:8080/f"])));
  return { rttMs, mbps: (speeds.sort((a, b) => a - b)[1]! * 8) / 1e6 };
}

const runc = pair("r");
const husk = pair("q");
const version = readdirSync(GUEST_DIR).filter((d) => !d.startsWith(".")).sort().at(-1);
const huskEnv = { HUSK_CONFIG: "/dev/null", HUSK_ROOT: join(work, "root"), HUSK_HYPERVISOR: "qemu", HUSK_GUEST_DIR: GUEST_DIR, ...(version ? { HUSK_GUEST_VERSION: version } : {}) };
try {
  sh(["runc", "--root", join(work, "runc"), "run", "-d", "--bundle", bundle("r", runc.ctr), "bn-runc"], {}, true);
  sh([HUSK, "run", "-d", "--bundle", bundle("q", husk.ctr), "bn-husk"], huskEnv, true);
  const r = measure(runc.host);
  const q = measure(husk.host);
  console.log(`host -> container RTT (avg of 20 pings): runc ${r.rttMs.toFixed(3)} ms, husk qemu ${q.rttMs.toFixed(3)} ms, ratio ${(q.rttMs / r.rttMs).toFixed(1)}`);
  console.log(`host -> container TCP (median of 3, 32 MiB): runc ${r.mbps.toFixed(0)} Mbit/s, husk qemu ${q.mbps.toFixed(0)} Mbit/s, ratio ${(r.mbps / q.mbps).toFixed(1)} (TCG: the guest's CPU is emulated)`);
} finally {
  spawnSync("runc", ["--root", join(work, "runc"), "delete", "--force", "bn-runc"]);
  spawnSync(HUSK, ["delete", "--force", "bn-husk"], { env: { ...process.env, ...huskEnv } });
  for (const ns of [runc.host, runc.ctr, husk.host, husk.ctr]) spawnSync("ip", ["netns", "del", ns]);
}
