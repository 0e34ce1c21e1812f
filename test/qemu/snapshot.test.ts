import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isAlive } from "../../lib/core/index.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { qemu10 } from "../helpers/qemu10.ts";
import { vmEnv, vmSkipReason } from "./assets.ts";

// husk checkpoint / restore of a QEMU sandbox: the VM's state goes to a file,
// the sandbox is torn down, and a new QEMU (QEMU 10: vhost-user-fs migrates)
// with a fresh virtiofsd brings it back with its container running, the
// container's writes to its tmpfs upper layer intact, and a shim waiting on it.

const skip = vmSkipReason();
if (skip) console.log(`test/qemu/snapshot: skipped: ${skip}`);

const ID = "snap1";

describe.skipIf(!!skip)("checkpoint and restore of a QEMU sandbox (TCG)", () => {
  let cli: Cli;
  let work: string;
  let bundle: string;
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "husk-snap-"));
    // Booted cold: templates have their own test (template.test.ts).
    cli = new Cli({ ...vmEnv(), HUSK_QEMU: qemu10(), HUSK_VM_TEMPLATES: "0" });
    bundle = makeBusyboxBundle(join(work, "bundle"), { args: ["sh", "-c", "echo before > /tmp/written; exec sleep 1000"] });
    withBinds(bundle, ["/etc/a", "/etc/b"], (d) => {
      writeFileSync(join(work, d.slice(5)), `${d}\n`);
      return join(work, d.slice(5));
    });
    cli.ok(["create", "--bundle", bundle, ID], { stdioFile: cli.out });
    cli.ok(["start", ID]);
  }, 600_000);
  afterAll(async () => {
    if (!cli) return;
    cli.run(["delete", "--force", ID]);
    await until(() => processesUsing(cli.root).length === 0, 30_000, "VM processes to exit");
  }, 120_000);

  test("saved, torn down, and back in a new VM: the container runs with its writes, a shim waits on it", async () => {
    expect(cli.ok(["exec", ID, "cat", "/tmp/written"])).toBe("before\n");
    const image = join(work, "image");
    cli.ok(["checkpoint", "--image-path", image, ID]);
    expect(cli.state(ID).status).toBe("paused");
    expect(existsSync(join(image, "vm.state"))).toBe(true);
    // The stream format, which every release (0.2.0 too) restores; not a template's RAM file.
    expect(JSON.parse(readFileSync(join(image, "husk-snapshot.json"), "utf8")).ramFile).toBeUndefined();
    expect(existsSync(join(image, "vm.ram"))).toBe(false);
    // What clients read of CRIU's files, as CRIU's own decoder reads them.
    expect(crit(join(image, "inventory.img"))).toEqual({ magic: "INVENTORY", entries: [{ img_version: 2 }] });
    const stats = crit(join(image, "stats-dump")) as { magic: string; entries: { dump: Record<string, number> }[] };
    expect(stats.magic).toBe("STATS");
    expect(stats.entries[0]!.dump.pages_written).toBeGreaterThan(1000); // the guest's memory is in the stream
    cli.ok(["delete", "--force", ID]);
    await until(() => processesUsing(cli.root).length === 0, 30_000, "the old VM to go");

    // A file the guest never saw: read through the new virtiofsd after restore.
    writeFileSync(join(bundle, "rootfs", "etc", "after"), "new file\n");
    // A bundle written anew that lists the binds in another order (as
    // podman's restore --import does): each source still reaches the
    // destination the guest mounted it at.
    const again = join(work, "bundle-again");
    cpSync(bundle, again, { recursive: true, filter: (p) => !p.includes("/rootfs/") });
    const spec = JSON.parse(readFileSync(join(again, "config.json"), "utf8"));
    writeFileSync(join(again, "config.json"), JSON.stringify({ ...spec, root: { path: join(bundle, "rootfs") }, mounts: [...spec.mounts].reverse() }));
    const pidFile = join(work, "restored.pid");
    cli.ok(["restore", "--image-path", image, "--bundle", again, "--pid-file", pidFile, ID]);
    const st = cli.state(ID);
    expect(st.status).toBe("running");
    expect(st.pid).toBe(Number(readFileSync(pidFile, "utf8")));
    expect(isAlive(st.pid)).toBe(true);
    expect(cli.ok(["exec", ID, "cat", "/tmp/written", "/etc/after", "/etc/a", "/etc/b"])).toBe("before\nnew file\n/etc/a\n/etc/b\n");

    // --leave-running: saved again while it keeps going.
    cli.ok(["checkpoint", "--leave-running", "--image-path", join(work, "image2"), ID]);
    expect(cli.state(ID).status).toBe("running");
    expect(cli.ok(["exec", ID, "echo", "still"])).toBe("still\n");

    // The shim stands for the container: it exits when the container does.
    cli.ok(["kill", ID, "KILL"]);
    await until(() => !isAlive(st.pid), 30_000, "the restored container's shim to exit");
    expect(cli.state(ID).status).toBe("stopped");
    cli.ok(["delete", ID]);
    expect(cli.leftovers()).toEqual([]);

    // A truncated state file: a clear error, and nothing left behind.
    const bad = join(work, "truncated");
    cpSync(image, bad, { recursive: true });
    truncateSync(join(bad, "vm.state"), 4 << 20);
    const r = cli.run(["restore", "--image-path", bad, ID]);
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim()).toMatch(/^husk: restore: QEMU cannot load .*truncated\/vm\.state: .+$/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(cli.run(["state", ID]).status).not.toBe(0);
    await until(() => processesUsing(cli.root).length === 0, 30_000, "the failed restore's processes to go");
    expect(cli.leftovers()).toEqual([]);

    // Another QEMU version cannot load the stream: refused by name.
    const other = join(work, "other-version");
    cpSync(image, other, { recursive: true });
    const info = JSON.parse(readFileSync(join(other, "husk-snapshot.json"), "utf8"));
    writeFileSync(join(other, "husk-snapshot.json"), JSON.stringify({ ...info, vmmVersion: "9.2.0" }));
    const v = cli.run(["restore", "--image-path", other, ID]);
    expect(v.stderr.trim()).toMatch(/^husk: restore: snapshot .* was taken with QEMU 9\.2\.0, but this one is 10\.\d+\.\d+; snapshots restore only on the same version$/);
    expect(v.status).not.toBe(0);
    expect(cli.leftovers()).toEqual([]);

    // Under another id, from an agent that cannot rename (an older guest): refused by name.
    const oldAgent = join(work, "old-agent");
    cpSync(image, oldAgent, { recursive: true });
    const doc = JSON.parse(readFileSync(join(oldAgent, "husk-sandbox.json"), "utf8"));
    expect(doc.agent.capabilities).toContain("rename");
    doc.agent.capabilities = doc.agent.capabilities.filter((c: string) => c !== "rename");
    writeFileSync(join(oldAgent, "husk-sandbox.json"), JSON.stringify(doc));
    const named = cli.run(["restore", "--image-path", oldAgent, "snap-other"]);
    expect(named.stderr.trim()).toBe(`husk: restore: the checkpoint at ${oldAgent} holds container ${ID}, and its agent cannot rename it to snap-other (no "rename"); restore it as ${ID}`);
    expect(named.status).not.toBe(0);
    expect(cli.leftovers()).toEqual([]);

    // A bundle that no longer binds what the guest mounted: refused by name.
    writeFileSync(join(again, "config.json"), JSON.stringify({ ...spec, root: { path: join(bundle, "rootfs") }, mounts: spec.mounts.filter((m: { destination: string }) => m.destination !== "/etc/b") }));
    const gone = cli.run(["restore", "--image-path", image, "--bundle", again, ID]);
    expect(gone.stderr.trim()).toBe(`husk: restore: container ${ID}'s bundle no longer binds /etc/b, which its checkpointed guest has mounted`);
    expect(gone.status).not.toBe(0);
    await until(() => processesUsing(cli.root).length === 0, 30_000, "the refused restore's processes to go");
    expect(cli.leftovers()).toEqual([]);
  }, 600_000);
});

// Read-only binds of host files at the given destinations, added to a bundle.
function withBinds(bundle: string, destinations: string[], source: (destination: string) => string): void {
  const file = join(bundle, "config.json");
  const spec = JSON.parse(readFileSync(file, "utf8"));
  const binds = destinations.map((destination) => ({ destination, type: "bind", source: source(destination), options: ["bind", "ro"] }));
  writeFileSync(file, JSON.stringify({ ...spec, mounts: [...spec.mounts, ...binds] }));
}

// CRIU's image decoder (Debian's criu; .ci/setup installs it).
function crit(file: string): unknown {
  return JSON.parse(sh(["crit", "decode", "-i", file]));
}

function sh(cmd: string[]): string {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

// The guest wakes with the network it was saved with: restored beside the
// same interfaces it gets its taps again; into a namespace made again with
// another MAC and address (as a client would for a restore), the agent
// configures the guest anew; an interface more than the VM has devices for is refused.
describe.skipIf(!!skip)("checkpoint and restore of a QEMU sandbox with a network interface (TCG)", () => {
  test("restored with new taps it serves again, also from a namespace made anew; an interface more is refused by name, leaving nothing", async () => {
    const cli = new Cli({ ...vmEnv(), HUSK_QEMU: qemu10(), HUSK_VM_TEMPLATES: "0" });
    const work = mkdtempSync(join(tmpdir(), "husk-snap-net-"));
    const [peer, ns] = [`husk-snp-${process.pid}`, `husk-snc-${process.pid}`];
    const links = () => sh(["ip", "-n", ns, "-o", "link"]);
    const page = (ip: string) => spawnSync("nsenter", [`--net=/run/netns/${peer}`, "curl", "-s", "-m", "10", `http://${ip}:8080/i`], { encoding: "utf8" }).stdout;
    const mac = () => (JSON.parse(sh(["ip", "-n", ns, "-j", "link", "show", "eth0"])) as { address: string }[])[0]!.address;
    // The client's side: veth `host` in the peer namespace, `eth0` in the sandbox's.
    const veth = (host: string, name: string, hostAddr: string, addr: string) => {
      sh(["ip", "link", "add", host, "netns", peer, "type", "veth", "peer", "name", name, "netns", ns]);
      for (const [n, a, dev] of [[peer, hostAddr, host], [ns, addr, name]]) {
        sh(["ip", "-n", n!, "addr", "add", a!, "dev", dev!]);
        sh(["ip", "-n", n!, "link", "set", dev!, "up"]);
      }
    };
    const checkpoint = (image: string) => {
      cli.ok(["checkpoint", "--image-path", image, "net1"]);
      cli.ok(["delete", "--force", "net1"]);
      expect(links()).not.toContain("_husk");
    };
    try {
      for (const n of [peer, ns]) sh(["ip", "netns", "add", n]);
      veth("vsnap", "eth0", "10.78.0.1/24", "10.78.0.2/24");
      const first = mac();
      const b = makeBusyboxBundle(join(work, "bundle"), { args: ["sh", "-c", "mkdir -p /w && echo served > /w/i && exec httpd -f -p 8080 -h /w"] });
      const spec = JSON.parse(readFileSync(join(b, "config.json"), "utf8"));
      spec.linux.namespaces = spec.linux.namespaces.map((m: { type: string }) => (m.type === "network" ? { type: "network", path: `/run/netns/${ns}` } : m));
      writeFileSync(join(b, "config.json"), JSON.stringify(spec));
      cli.ok(["create", "--bundle", b, "net1"], { stdioFile: join(work, "out") });
      cli.ok(["start", "net1"]);
      await until(() => page("10.78.0.2") === "served\n", 60_000, "the page before the checkpoint");

      checkpoint(join(work, "image"));
      cli.ok(["restore", "--image-path", join(work, "image"), "net1"], { stdioFile: join(work, "out2") });
      expect(links()).toContain("tap0_husk");
      expect(page("10.78.0.2")).toBe("served\n");
      expect(cli.ok(["exec", "net1", "cat", "/sys/class/net/eth0/address"]).trim()).toBe(first);

      // The namespace made again: a new veth (a new MAC), another address, a default route.
      checkpoint(join(work, "image2"));
      sh(["ip", "-n", peer, "link", "del", "vsnap"]); // at once: a netns's own teardown is not
      sh(["ip", "netns", "del", ns]);
      sh(["ip", "netns", "add", ns]);
      veth("vsnap", "eth0", "10.78.0.1/24", "10.78.0.3/24");
      sh(["ip", "-n", ns, "route", "add", "default", "via", "10.78.0.1"]);
      expect(mac()).not.toBe(first);
      cli.ok(["restore", "--image-path", join(work, "image2"), "net1"], { stdioFile: join(work, "out3") });
      expect(page("10.78.0.3")).toBe("served\n");
      expect(cli.ok(["exec", "net1", "cat", "/sys/class/net/eth0/address"]).trim()).toBe(mac());
      const addrs = cli.ok(["exec", "net1", "busybox", "ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
      expect([addrs.includes("10.78.0.3/24"), addrs.includes("10.78.0.2/")]).toEqual([true, false]);
      expect(cli.ok(["exec", "net1", "busybox", "ip", "route"])).toContain("default via 10.78.0.1 dev eth0");

      // A VM's devices are fixed when it starts: a second interface is refused.
      checkpoint(join(work, "image3"));
      veth("vsnap1", "eth1", "10.79.0.1/24", "10.79.0.2/24");
      const r = cli.run(["restore", "--image-path", join(work, "image3"), "net1"]);
      expect(r.status).not.toBe(0);
      expect(r.stderr.trim()).toBe(
        `husk: restore: network namespace /run/netns/${ns} is not what sandbox net1 was checkpointed with ` +
          `(eth1 is new), and a VM's network devices are fixed when it starts: it has 1`,
      );
      expect(links()).not.toContain("_husk");
      expect(cli.leftovers()).toEqual([]);
    } finally {
      cli.run(["delete", "--force", "net1"]);
      for (const n of [peer, ns]) spawnSync("ip", ["netns", "del", n]);
    }
    await until(() => processesUsing(cli.root).length === 0, 30_000, "VM processes to exit");
  }, 600_000);
});

describe.skipIf(!!skip)("checkpoint with a QEMU older than 10", () => {
  test("is refused by name and the sandbox runs on", async () => {
    const cli = new Cli(vmEnv()); // the host's QEMU (7.2 here)
    const b = makeBusyboxBundle(join(mkdtempSync(join(tmpdir(), "husk-snap-old-")), "bundle"), { args: ["sleep", "1000"] });
    try {
      cli.ok(["create", "--bundle", b, "old1"], { stdioFile: cli.out });
      const r = cli.run(["checkpoint", "--image-path", join(cli.root, "..", "img"), "old1"]);
      if (r.status === 0) return console.log("test/qemu/snapshot: the host's QEMU is 10 or newer; nothing to refuse");
      expect(r.stderr.trim()).toMatch(/^husk: checkpoint: QEMU \d+\.\d+\.\d+ cannot save a VM with a virtio-fs device \(QEMU 10 or newer can\); point qemu\.path \(HUSK_QEMU\) at one/);
      expect(cli.state("old1").status).toBe("created");
    } finally {
      cli.run(["delete", "--force", "old1"]);
      await until(() => processesUsing(cli.root).length === 0, 30_000, "VM processes to exit");
    }
  }, 300_000);
});
