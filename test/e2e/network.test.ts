import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { builtBinary } from "../helpers/husk.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { busyboxRootfsTar } from "../helpers/images.ts";
import { processesUsing, until } from "../helpers/cli.ts";
import { TEST_GUEST_DIR, buildAssets, vmSkipReason } from "../qemu/assets.ts";

// Container networking as podman prepares it (a CNI bridge network, a netns
// per container, a published port), with runc's behaviour (local driver) as
// the reference and the qemu driver carrying the netns into the VM. Every
// packet stays inside a network namespace this test creates: podman, its
// bridge and the containers' namespaces all live in it.

const work = mkdtempSync(join(tmpdir(), "husk-net-"));
const NETNS = `husk-net-${process.pid}`;
const NETNS_PATH = `/run/netns/${NETNS}`;
const SUBNET = `10.89.${100 + (process.pid % 100)}`;
const image = "localhost/husk-net-busybox:latest";
const vmSkip = vmSkipReason();

function run(cmd: string[], env: Record<string, string> = {}, timeout = 180_000) {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: "utf8", env: { ...process.env, ...env }, timeout });
  return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}
const podmanEnv = { CONTAINERS_STORAGE_CONF: join(work, "storage.conf"), CONTAINERS_CONF: join(work, "containers.conf") };
const inNs = (cmd: string[], timeout?: number) => run(["nsenter", `--net=${NETNS_PATH}`, ...cmd], podmanEnv, timeout);

// conmon passes no flags or environment to a runtime: a wrapper gives husk
// this test's own config file (no /etc/husk/config.toml is touched).
function runtimeFor(driver: string, guestVersion?: string): { path: string; root: string } {
  const root = join(work, `root-${driver}`);
  const config = join(work, `config-${driver}.toml`);
  const guest = guestVersion ? `[guest]\ndir = "${TEST_GUEST_DIR}"\nversion = "${guestVersion}"\n` : "";
  writeFileSync(config, `root = "${root}"\nhypervisor = "${driver}"\n${guest}`);
  const path = join(work, `husk-${driver}`);
  writeFileSync(path, `#!/bin/sh\nexec ${builtBinary()} --config ${config} "$@"\n`);
  chmodSync(path, 0o755);
  return { path, root };
}

// Interfaces named like husk's taps, and ingress qdiscs, in every netns.
function tapsAndFilters(): string[] {
  const found: string[] = [];
  for (const ns of readdirSync("/run/netns")) {
    const links = run(["ip", "-n", ns, "-o", "link"]).stdout;
    for (const l of links.split("\n")) if (l.includes("_husk")) found.push(`${ns}: ${l.split(":")[1]?.trim()}`);
    const qd = run(["tc", "-n", ns, "qdisc", "show"]).stdout;
    for (const l of qd.split("\n")) if (l.includes("ingress")) found.push(`${ns}: ${l}`);
  }
  return found;
}

beforeAll(() => {
  expect(run(["ip", "netns", "add", NETNS]).status).toBe(0);
  inNs(["ip", "link", "set", "lo", "up"]);
  writeFileSync(podmanEnv.CONTAINERS_STORAGE_CONF, `[storage]\ndriver = "vfs"\nrunroot = "${work}/pm-run"\ngraphroot = "${work}/pm-graph"\n`);
  writeFileSync(
    podmanEnv.CONTAINERS_CONF,
    `[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n` +
      `[network]\nnetwork_config_dir = "${work}/cni"\n`,
  );
  mkdirSync(join(work, "cni"));
  const imp = run(["podman", "import", busyboxRootfsTar(join(work, "img")), image], podmanEnv);
  expect(imp.status, imp.stderr).toBe(0);
  const net = run(["podman", "network", "create", "--subnet", `${SUBNET}.0/24`, "huskbr"], podmanEnv);
  expect(net.status, net.stderr).toBe(0);
}, 120_000);

afterAll(() => {
  run(["podman", "network", "rm", "-f", "huskbr"], podmanEnv);
  run(["ip", "netns", "del", NETNS]);
});

const PAGE = "mkdir -p /www && echo page > /www/index.html && head -c 2097152 /dev/urandom > /www/blob && md5sum /www/blob | cut -d' ' -f1 > /www/blob.md5";

describe.each([
  ["local", 1],
  ["qemu", 2],
] as const)("podman bridge network, %s driver", (driver, n) => {
  const skip = driver === "qemu" ? vmSkip : undefined;
  let rt: { path: string; root: string };
  const podman = (...args: string[]) => inNs(["podman", "--runtime", rt.path, ...args], 300_000);
  const inspect = (name: string, fmt: string) => podman("inspect", "--format", fmt, name).stdout.trim();
  // Through sh: an imported image sets no PATH, and sh has busybox's default.
  const inside = (name: string, script: string) => podman("exec", name, "sh", "-c", script);

  beforeAll(() => {
    if (skip) return;
    let version: string | undefined;
    if (driver === "qemu") {
      const r = buildAssets();
      if (r.status !== 0) throw new Error(`husk guest build failed: ${r.stderr}`);
      version = /guest assets (\S+)/.exec(r.stdout)![1]!;
    }
    rt = runtimeFor(driver, version);
  }, 600_000);

  test.skipIf(!!skip)("a web server: reached by IP and by published port, sees podman's address, MAC, route and MTU; another container (with a net.* sysctl) downloads 2 MiB intact", async () => {
    const web = `web-${driver}`;
    const port = 18080 + n;
    const started = podman("run", "-d", "--name", web, "--network", "huskbr", "-p", `${port}:8080`, image, "sh", "-c", `${PAGE} && httpd -f -p 8080 -h /www`);
    expect(started.status, started.stderr).toBe(0);
    try {
      const ip = inspect(web, "{{.NetworkSettings.Networks.huskbr.IPAddress}}");
      const mac = inspect(web, "{{.NetworkSettings.Networks.huskbr.MacAddress}}");
      const gateway = inspect(web, "{{.NetworkSettings.Networks.huskbr.Gateway}}");
      expect(ip).toMatch(new RegExp(`^${SUBNET.replaceAll(".", "\\.")}\\.\\d+$`));
      await until(() => inNs(["curl", "-s", "-m", "5", `http://${ip}:8080/index.html`]).stdout === "page\n", 120_000, "the page by the container's IP");
      expect(inNs(["curl", "-s", "-m", "10", `http://${gateway}:${port}/index.html`]).stdout).toBe("page\n"); // the published port

      const eth0 = inside(web, "ip addr show eth0").stdout;
      expect(eth0).toContain(`inet ${ip}/24`);
      expect(inside(web, "cat /sys/class/net/eth0/address").stdout.trim()).toBe(mac);
      expect(inside(web, "ip route").stdout).toMatch(new RegExp(`^default via ${gateway.replaceAll(".", "\\.")} dev eth0`, "m"));
      const bridge = run(["podman", "network", "inspect", "--format", "{{.NetworkInterface}}", "huskbr"], podmanEnv).stdout.trim();
      // (nsenter does not remount /sys: ask the kernel over netlink instead)
      const bridgeMtu = String((JSON.parse(inNs(["ip", "-j", "link", "show", "dev", bridge]).stdout) as { mtu: number }[])[0]?.mtu);
      expect(inside(web, "cat /sys/class/net/eth0/mtu").stdout.trim()).toBe(bridgeMtu);
      expect(inside(web, `ping -c 1 -W 10 ${gateway}`).status).toBe(0);
      // DNS and name files are podman's, bound in (through the share for a VM).
      expect(inside(web, "cat /etc/hosts").stdout).toMatch(new RegExp(`^${ip.replaceAll(".", "\\.")}\\s.*${web}`, "m"));
      expect(inside(web, "cat /etc/hostname").stdout.trim()).toBe(inspect(web, "{{.Config.Hostname}}"));
      expect(inside(web, "cat /etc/resolv.conf").stdout).toBe(readFileSync(inspect(web, "{{.ResolvConfPath}}"), "utf8"));

      const want = inside(web, "cat /www/blob.md5").stdout.trim();
      // A net.* sysctl applies in the network the container joined (runc's check: not the host's).
      const fetch = `cat /proc/sys/net/ipv4/ip_default_ttl; wget -qO /tmp/b http://${ip}:8080/blob && md5sum /tmp/b | cut -d' ' -f1`;
      const got = podman("run", "--rm", "--network", "huskbr", "--sysctl", "net.ipv4.ip_default_ttl=42", image, "sh", "-c", fetch);
      expect(got.stderr).toBe("");
      expect(got.stdout.trim().split("\n")).toEqual(["42", want]);
    } finally {
      expect(podman("rm", "-f", "--time", "0", web).status).toBe(0);
    }
    await until(() => processesUsing(rt.root).length === 0, 30_000, "husk processes to exit");
    expect(tapsAndFilters()).toEqual([]);
    expect(existsSync(rt.root) ? readdirSync(rt.root) : []).toEqual([]);
  }, 600_000);

  test.skipIf(!!skip)("--network none: only lo", async () => {
    const r = podman("run", "--rm", "--network", "none", image, "sh", "-c", "ls /sys/class/net");
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split("\n")).toEqual(["lo"]);
    await until(() => processesUsing(rt.root).length === 0, 30_000, "husk processes to exit");
  }, 300_000);
});

// A pod (CRI annotations): the sandbox's netns carried into its VM is the
// network of every container that joins it, as with runc in one netns.
describe.skipIf(!!vmSkip)("a pod's containers share the VM's network", () => {
  test("the joined container sees the pod's eth0 and reaches the first container on localhost", async () => {
    const podNs = `${NETNS}-pod`;
    run(["ip", "netns", "add", podNs]);
    const root = join(work, "pod-root");
    const husk = (args: string[]) =>
      run([builtBinary(), "--root", root, "--hypervisor", "qemu", ...args], { HUSK_CONFIG: "/dev/null", HUSK_GUEST_DIR: TEST_GUEST_DIR });
    try {
      run(["ip", "link", "add", "vpod", "netns", NETNS, "type", "veth", "peer", "name", "eth0", "netns", podNs]);
      inNs(["ip", "addr", "add", "10.66.7.1/24", "dev", "vpod"]);
      inNs(["ip", "link", "set", "vpod", "up"]);
      for (const args of [["addr", "add", "10.66.7.2/24", "dev", "eth0"], ["link", "set", "eth0", "up"], ["link", "set", "lo", "up"]])
        run(["ip", "-n", podNs, ...args]);
      const web = makeBusyboxBundle(join(work, "pod-a"), { args: ["sh", "-c", "mkdir -p /w && echo from-a > /w/i && httpd -f -p 8080 -h /w"] });
      const joined = makeBusyboxBundle(join(work, "pod-b"), { args: ["sleep", "300"] });
      for (const [b, annotations] of [[web, { "io.kubernetes.cri.container-type": "sandbox" }], [joined, { "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "pod-a" }]] as const) {
        const spec = JSON.parse(readFileSync(join(b, "config.json"), "utf8"));
        spec.annotations = annotations;
        spec.linux.namespaces = spec.linux.namespaces.map((x: { type: string }) => (x.type === "network" ? { type: "network", path: `/run/netns/${podNs}` } : x));
        writeFileSync(join(b, "config.json"), JSON.stringify(spec));
      }
      for (const [b, id] of [[web, "pod-a"], [joined, "pod-b"]]) {
        const c = spawnSync(builtBinary(), ["--root", root, "--hypervisor", "qemu", "run", "-d", "--bundle", b!, id!], {
          env: { ...process.env, HUSK_CONFIG: "/dev/null", HUSK_GUEST_DIR: TEST_GUEST_DIR }, stdio: "ignore", timeout: 300_000,
        });
        expect(c.status, `run ${id}`).toBe(0);
      }
      const addr = husk(["exec", "pod-b", "sh", "-c", "ip addr show eth0"]);
      expect(addr.stdout, addr.stderr).toContain("inet 10.66.7.2/24");
      await until(() => husk(["exec", "pod-b", "sh", "-c", "wget -qO- http://127.0.0.1:8080/i"]).stdout === "from-a\n", 60_000, "pod-a's page on localhost");
      expect(inNs(["curl", "-s", "-m", "10", "http://10.66.7.2:8080/i"]).stdout).toBe("from-a\n");
    } finally {
      for (const id of ["pod-b", "pod-a"]) husk(["delete", "--force", id]);
      expect(run(["ip", "-n", podNs, "-o", "link"]).stdout).not.toContain("_husk");
      run(["ip", "netns", "del", podNs]);
    }
    expect(processesUsing(root)).toEqual([]);
  }, 300_000);
});

describe.skipIf(!!vmSkip)("VM network input husk refuses, leaving the netns as it was", () => {
  let guest: Record<string, string> = {};
  beforeAll(() => {
    const r = buildAssets();
    if (r.status !== 0) throw new Error(`husk guest build failed: ${r.stderr}`);
    guest = { HUSK_CONFIG: "/dev/null", HUSK_GUEST_DIR: TEST_GUEST_DIR, HUSK_GUEST_VERSION: /guest assets (\S+)/.exec(r.stdout)![1]! };
  }, 600_000);
  const cli = (root: string, args: string[]) => run([builtBinary(), "--root", root, "--hypervisor", "qemu", ...args], guest);
  const bundleWith = (name: string, network: { path?: string } | undefined) => {
    const b = makeBusyboxBundle(join(work, name), { args: ["true"] });
    const spec = JSON.parse(readFileSync(join(b, "config.json"), "utf8"));
    spec.linux.namespaces = spec.linux.namespaces.filter((x: { type: string }) => x.type !== "network");
    if (network) spec.linux.namespaces.push({ type: "network", ...network });
    writeFileSync(join(b, "config.json"), JSON.stringify(spec));
    return b;
  };

  test("a create that crashed after the VM got its network: delete --force removes the taps and filters", async () => {
    const crashNs = `${NETNS}-crash`;
    run(["ip", "netns", "add", crashNs]);
    try {
      run(["ip", "-n", crashNs, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"]);
      const root = join(work, "crash-root");
      const b = bundleWith("b-crash", { path: `/run/netns/${crashNs}` });
      const husk = (args: string[], env: Record<string, string> = {}) =>
        run([builtBinary(), "--root", root, "--hypervisor", "qemu", ...args], { ...guest, ...env });
      // Two interfaces whose names the guest's devices swap (its eth0 is the host's eth1).
      const crashed = husk(["create", "-b", b, "nc1"], { HUSK_TEST_CRASH_AT: "create:agent-ready" });
      expect(crashed.stderr).toBe(""); // killed after the guest took both interfaces, not failed
      expect(crashed.status).not.toBe(0);
      const links = run(["ip", "-n", crashNs, "-o", "link"]).stdout;
      expect(links).toContain("tap0_husk"); // the crash left them
      expect(links).toContain("tap1_husk");
      expect(husk(["delete", "--force", "nc1"]).status).toBe(0);
      expect(run(["ip", "-n", crashNs, "-o", "link"]).stdout).not.toContain("_husk");
      expect(run(["tc", "-n", crashNs, "qdisc", "show"]).stdout).not.toContain("ingress");
      await until(() => processesUsing(root).length === 0, 20_000, "the VM to be gone");
      expect(existsSync(root) ? readdirSync(root).filter((n) => n !== "qemu") : []).toEqual([]);
    } finally {
      run(["ip", "netns", "del", crashNs]);
    }
  }, 300_000);

  test("a netns path that does not exist, the host's network, an interface that cannot be mirrored", () => {
    const root = join(work, "bad-root");
    const missing = cli(root, ["create", "-b", bundleWith("b-missing", { path: "/run/netns/no-such-netns" }), "nm1"]);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr.trim()).toBe("husk: network namespace /run/netns/no-such-netns does not exist");

    const host = cli(root, ["create", "-b", bundleWith("b-host", undefined), "nm2"]);
    expect(host.stderr).toMatch(/shares the host's network .* which a VM sandbox cannot join/);
    // The host's namespace by path (a process of the host): never mirrored.
    const hostNs = `/proc/${process.pid}/ns/net`;
    const byPath = cli(root, ["create", "-b", bundleWith("b-host-path", { path: hostNs }), "nm4"]);
    expect(byPath.stderr.trim()).toBe(`husk: network namespace ${hostNs} is the host's: a VM sandbox cannot join it`);
    expect(run(["ip", "-o", "link"]).stdout).not.toContain("_husk");

    // A layer-3 tun device carries no Ethernet frames: it cannot become a NIC.
    const tunNs = `${NETNS}-tun`;
    run(["ip", "netns", "add", tunNs]);
    try {
      run(["ip", "-n", tunNs, "tuntap", "add", "dev", "tun9", "mode", "tun"]);
      const tun = cli(root, ["create", "-b", bundleWith("b-tun", { path: `/run/netns/${tunNs}` }), "nm3"]);
      expect(tun.stderr).toMatch(/interface tun9 \(tun, link type none\) cannot be mirrored into a VM/);
      expect(run(["ip", "-n", tunNs, "-o", "link"]).stdout).not.toContain("_husk");
    } finally {
      run(["ip", "netns", "del", tunNs]);
    }
    for (const r of [missing, host, byPath]) expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(existsSync(root) ? readdirSync(root).filter((n) => n !== "qemu") : []).toEqual([]);
    expect(processesUsing(root)).toEqual([]);
  });
});
