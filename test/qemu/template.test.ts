import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { qemu10 } from "../helpers/qemu10.ts";
import { vmEnv, vmSkipReason } from "./assets.ts";

// VM templates: the first sandbox of a kind boots a VM to a serving agent and
// saves it; later ones restore that image with their own virtiofsd and
// shared directory, then take the host's clock, fresh entropy and their own
// hostname. A template that is corrupt or was made by another husk is never
// used as is. Its own guest directory: templates live beside the assets.

const skip = vmSkipReason();

function sh(cmd: string[]): string {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
  return r.stdout;
}
if (skip) console.log(`test/qemu/template: skipped: ${skip}`);

// What the guest's agent holds (`husk inspect --guest`).
interface GuestHeld {
  containers: string[];
  ociContainers: string[];
  containerDirs: string[];
  mounts: string[];
}

interface Seen {
  hostname: string;
  clock: number; // the guest's wall clock, seconds
  random: string;
}

describe.skipIf(!!skip)("VM templates (QEMU 10, TCG)", () => {
  let cli: Cli;
  let guestDir: string;
  let bundle: string;
  let key: string;
  const templates = () => join(guestDir, ".templates");

  // One container run in a new sandbox: what it saw, and the template its VM came from.
  function run(id: string, env: Record<string, string> = {}): Seen & { template?: string; status: number; stderr: string; guest: GuestHeld } {
    const c = new Cli({ ...cli.env, ...env }, cli.root);
    c.ok(["create", "--bundle", bundle, id], { stdioFile: join(bundle, `${id}.out`) });
    const doc = JSON.parse(c.ok(["inspect", id])) as { template?: { key: string } };
    const guest = JSON.parse(c.ok(["inspect", "--guest", id])) as GuestHeld;
    c.ok(["start", id]);
    const r = c.run(["exec", id, "sh", "-c", "hostname; date +%s; head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'"]);
    c.run(["delete", "--force", id]);
    const [hostname, clock, random] = r.stdout.split("\n");
    return { hostname: hostname!, clock: Number(clock), random: random!, template: doc.template?.key, status: r.status, stderr: r.stderr, guest };
  }

  beforeAll(() => {
    const base = vmEnv();
    guestDir = base.HUSK_GUEST_DIR!;
    cli = new Cli({ ...base, HUSK_QEMU: qemu10() });
    bundle = makeBusyboxBundle(join(mkdtempSync(join(tmpdir(), "husk-template-")), "bundle"), { args: ["sleep", "1000"] });
    const spec = JSON.parse(readFileSync(join(bundle, "config.json"), "utf8"));
    writeFileSync(join(bundle, "config.json"), JSON.stringify({ ...spec, hostname: "from-spec" }));
  }, 600_000);
  afterAll(async () => {
    if (!cli) return;
    await until(() => processesUsing(cli.root).length === 0, 30_000, "VM processes to exit");
  }, 120_000);

  test("built once, then restored: each sandbox gets the host's clock, its own entropy and hostname", () => {
    const first = run("t1");
    expect(first.status).toBe(0);
    expect(first.template).toMatch(/^[0-9a-f]{24}$/);
    key = first.template!;
    const info = JSON.parse(readFileSync(join(templates(), key, "husk-template.json"), "utf8"));
    const builtAt = Date.parse(info.createdAt);
    // Its RAM in a sparse file of its own, the stream holding only the devices: a cache only this build reads.
    const snap = JSON.parse(readFileSync(join(templates(), key, "husk-snapshot.json"), "utf8"));
    expect(snap.ramFile).toBe(true);
    const ram = statSync(join(templates(), key, "vm.ram"));
    expect(ram.size).toBe(snap.memoryMiB * 1024 * 1024);
    expect(ram.blocks * 512).toBeLessThan(ram.size / 2);
    expect(statSync(join(templates(), key, "vm.state")).size).toBeLessThan(4 * 1024 * 1024);

    const second = run("t2");
    expect(second.template).toBe(first.template);
    const saved = JSON.parse(readFileSync(join(templates(), first.template!, "husk-template.json"), "utf8"));
    expect(saved.createdAt).toBe(info.createdAt); // restored, not rebuilt
    expect(second.hostname).toBe("from-spec");
    // Without the step the guest's clock would stand where the template was saved.
    const now = Date.now() / 1000;
    expect(now - builtAt / 1000).toBeGreaterThan(5);
    expect(Math.abs(second.clock - now)).toBeLessThan(5);
    // The same memory image, reseeded: no two sandboxes draw the same bytes.
    expect(second.random).toMatch(/^[0-9a-f]{32}$/);
    expect(second.random).not.toBe(first.random);
    // The template's agent ran a container of its own before it was saved
    // (its first create is then not paid by every sandbox): none of it is left.
    const { containers, ociContainers, containerDirs, mounts } = second.guest;
    expect({ containers, ociContainers, containerDirs }).toEqual({ containers: ["t2"], ociContainers: ["t2"], containerDirs: ["t2"] });
    expect(mounts.filter((m) => !m.includes("/c/t2/"))).toEqual([]);
    expect(cli.leftovers()).toEqual([]);
  }, 600_000);

  test("a sandbox restored from a template is checkpointed with its memory and comes back from that checkpoint", async () => {
    const id = "t-ck";
    const image = join(mkdtempSync(join(tmpdir(), "husk-template-ck-")), "image");
    cli.ok(["create", "--bundle", bundle, id], { stdioFile: join(bundle, `${id}.out`) });
    expect((JSON.parse(cli.ok(["inspect", id])) as { template?: { key: string } }).template?.key).toBe(key);
    cli.ok(["start", id]);
    cli.ok(["exec", id, "sh", "-c", "echo kept > /tmp/w"]);
    cli.ok(["checkpoint", "--image-path", image, id]);
    // The stream holds the guest's RAM, as any checkpoint's does: the
    // template's restore left QEMU set to leave shared RAM out.
    expect(JSON.parse(readFileSync(join(image, "husk-snapshot.json"), "utf8")).ramFile).toBeUndefined();
    expect(statSync(join(image, "vm.state")).size).toBeGreaterThan(16 * 1024 * 1024);
    cli.ok(["delete", "--force", id]);
    await until(() => processesUsing(cli.root).length === 0, 30_000, "the old VM to go");
    cli.ok(["restore", "--image-path", image, id], { stdioFile: join(bundle, `${id}.out2`) });
    expect(cli.ok(["exec", id, "cat", "/tmp/w"])).toBe("kept\n");
    cli.ok(["delete", "--force", id]);
    expect(cli.leftovers()).toEqual([]);
  }, 600_000);

  test("sandboxes with a network interface restore a template with one device; each takes its host interface's MAC and serves the other and the host", async () => {
    const ns = `husk-tpl-${process.pid}`; // a bridge joining both sandboxes' veths
    const nets = { a: `${ns}-a`, b: `${ns}-b` };
    const ip = (...args: string[]) => sh(["ip", ...args]);
    let links = "";
    try {
      for (const n of [ns, nets.a, nets.b]) ip("netns", "add", n);
      ip("-n", ns, "link", "add", "br0", "type", "bridge");
      ip("-n", ns, "addr", "add", "10.77.0.1/24", "dev", "br0");
      ip("-n", ns, "link", "set", "br0", "up");
      const host: Record<string, { addr: string; mac: string; key?: string }> = {};
      for (const [x, n] of Object.entries(nets)) {
        const addr = `10.77.0.${x === "a" ? 2 : 3}`;
        ip("link", "add", `v${x}`, "netns", ns, "type", "veth", "peer", "name", "eth0", "netns", n);
        ip("-n", ns, "link", "set", `v${x}`, "master", "br0", "up");
        ip("-n", n, "addr", "add", `${addr}/24`, "dev", "eth0");
        ip("-n", n, "link", "set", "eth0", "up");
        const mac = (JSON.parse(ip("-n", n, "-j", "link", "show", "eth0")) as { address: string }[])[0]!.address;
        const b = makeBusyboxBundle(join(bundle, "..", `net-${x}`), { args: ["sh", "-c", `mkdir -p /w && echo from-${x} > /w/i && exec httpd -f -p 8080 -h /w`] });
        const spec = JSON.parse(readFileSync(join(b, "config.json"), "utf8"));
        spec.linux.namespaces = spec.linux.namespaces.map((m: { type: string }) => (m.type === "network" ? { type: "network", path: `/run/netns/${n}` } : m));
        writeFileSync(join(b, "config.json"), JSON.stringify(spec));
        cli.ok(["create", "--bundle", b, `net-${x}`], { stdioFile: join(b, "out") });
        cli.ok(["start", `net-${x}`]);
        host[x] = { addr, mac, key: (JSON.parse(cli.ok(["inspect", `net-${x}`])) as { template?: { key: string } }).template?.key };
      }
      expect(host.a!.key).toMatch(/^[0-9a-f]{24}$/);
      expect(host.b!.key).toBe(host.a!.key);
      expect(host.a!.key).not.toBe(key); // another template than the one without devices
      expect(sh(["ip", "netns", "list"])).not.toContain("husk-template-"); // the build's placeholder taps are gone
      for (const [x, h] of Object.entries(host)) {
        expect(cli.ok(["exec", `net-${x}`, "cat", "/sys/class/net/eth0/address"]).trim()).toBe(h.mac);
        expect(cli.ok(["exec", `net-${x}`, "sh", "-c", "ip addr show eth0"])).toContain(`inet ${h.addr}/24`);
      }
      expect(cli.ok(["exec", "net-a", "sh", "-c", `wget -qO- http://${host.b!.addr}:8080/i`])).toBe("from-b\n");
      for (const [x, h] of Object.entries(host)) {
        expect(sh(["nsenter", `--net=/run/netns/${ns}`, "curl", "-s", "-m", "10", `http://${h.addr}:8080/i`])).toBe(`from-${x}\n`);
        expect(ip("-n", ns, "neigh", "show", h.addr)).toContain(`lladdr ${h.mac}`);
      }
    } finally {
      for (const x of ["a", "b"]) cli.run(["delete", "--force", `net-${x}`]);
      links = Object.values(nets).map((n) => spawnSync("ip", ["-n", n, "-o", "link"], { encoding: "utf8" }).stdout).join("");
      for (const n of [ns, ...Object.values(nets)]) spawnSync("ip", ["netns", "del", n]);
    }
    expect(links).not.toContain("_husk"); // taps and filters removed with the sandboxes
    expect(cli.leftovers()).toEqual([]);
  }, 600_000);

  test("a corrupt template (its device state or its RAM cut short) is dropped and the sandbox boots cold; the next one rebuilds it", () => {
    const files = ["vm.state", "vm.ram"].map((f) => join(templates(), key, f));
    for (const [i, file] of files.entries()) {
      truncateSync(file, Math.floor(statSync(file).size / 2));
      const cold = run(`t3${i}`);
      expect(cold.status).toBe(0);
      expect(cold.template).toBeUndefined();
      expect(cold.hostname).toBe("from-spec");
      expect(existsSync(join(templates(), key))).toBe(false);
      expect(cli.leftovers()).toEqual([]);

      const rebuilt = run(`t4${i}`);
      expect(rebuilt.template).toBe(key);
      expect(files.every((f) => existsSync(f))).toBe(true);
    }
  }, 600_000);

  test("a template another husk made is not restored but rebuilt; vm.templates=false boots cold", () => {
    const file = join(templates(), key, "husk-template.json");
    const info = JSON.parse(readFileSync(file, "utf8"));
    writeFileSync(file, JSON.stringify({ ...info, inputs: { ...info.inputs, husk: "0.0.1 another" } }));
    const again = run("t5");
    expect(again.template).toBe(key);
    expect(JSON.parse(readFileSync(file, "utf8")).inputs.husk).not.toBe("0.0.1 another");

    const off = run("t6", { HUSK_VM_TEMPLATES: "0" });
    expect(off.status).toBe(0);
    expect(off.template).toBeUndefined();
  }, 600_000);
});
