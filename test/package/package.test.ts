import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Database } from "bun:sqlite";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { loadReleases, releaseBinary } from "../../compat/index.ts";
import { buildPackage, type PackageResult } from "../../packaging/build.ts";
import { findExecutable } from "../../lib/hypervisor/index.ts";
import { DIST_HUSK, REPO } from "../helpers/husk.ts";
import { busyboxRootfsTar } from "../helpers/images.ts";
import { TEST_GUEST_DIR, vmSkipReason } from "../qemu/assets.ts";
import { Throwaway, exeOf, type Ran } from "./throwaway.ts";

// The Debian package as an operator meets it (issue 13): what is inside, an
// offline install in a throw-away root, and a dpkg upgrade and rollback while
// VM containers run. The previous release's package is its own binary (built
// from its commit) packaged by this tree's packaging code.

const TOOLS = ["dpkg-deb", "dpkg", "unshare", "nsenter", "podman", "zstd", "flock"];
const missing = TOOLS.filter((t) => !findExecutable(t));
const skip = vmSkipReason() ?? (missing.length ? `missing ${missing.join(", ")}` : undefined);
if (skip) console.log(`test/package: skipped: ${skip}`);

const work = mkdtempSync(join(tmpdir(), "husk-package-test-"));
const previous = loadReleases().at(-1)!;
const image = "localhost/husk-busybox:latest";
const hbDir = join(work, "heartbeats");
const GUEST = "/usr/share/husk/guest";
const VM_MS = 900_000;
const husk = join(work, "husk"); // the current binary, as packaged

let cur: PackageResult;
let prev: PackageResult;
let box: Throwaway;

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const ok = (r: Ran, what: string) => expect(r.status, `${what}: ${r.stderr}${r.stdout}`).toBe(0);
const podman = (...args: string[]) => box.run(["podman", "--runtime", "/usr/bin/husk", ...args]);
const dpkgArgv = (...args: string[]) => ["dpkg", `--log=${join(work, "dpkg.log")}`, ...args];
const dpkg = (...args: string[]) => box.run(dpkgArgv(...args));
const installedVersion = () => box.run(["dpkg-query", "-W", "-f=${Version} ${Status}", "husk"]).stdout;
const guestVersions = () => box.sh(`ls ${GUEST}`).stdout.split("\n").filter(Boolean).sort();

interface Sandbox {
  id: string;
  pid: number; // the container's pid as podman knows it: husk's shim
  assetsVersion: string;
  vmm: number;
}

function sandbox(name: string): Sandbox {
  const [id, pid] = podman("inspect", "--format", "{{.Id}} {{.State.Pid}}", name).stdout.trim().split(" ");
  const doc = box.run(["husk", "inspect", id!]);
  ok(doc, `husk inspect ${name}`);
  const parsed = JSON.parse(doc.stdout);
  const vm = parsed.vm ?? parsed.hypervisor; // format 1.0 (release 0.1.0) names it hypervisor
  return { id: id!, pid: Number(pid), assetsVersion: vm.assetsVersion, vmm: vm.vmm?.pid ?? vm.pid };
}

// Lines appended by a container every 100 ms, sampled from the host: the
// longest time between two growths of the file while `during` runs.
async function longestGap(files: string[], during: () => Promise<Ran>): Promise<{ ran: Ran; gaps: number[] }> {
  const size = (f: string) => (existsSync(f) ? statSync(f).size : 0);
  const last = files.map(() => Date.now());
  const sizes = files.map(size);
  const gaps = files.map(() => 0);
  let done = false;
  const sampler = (async () => {
    while (!done) {
      const now = Date.now();
      files.forEach((f, i) => {
        const s = size(f);
        if (s !== sizes[i]) (gaps[i] = Math.max(gaps[i]!, now - last[i]!)), (last[i] = now), (sizes[i] = s);
      });
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const ran = await during();
  await new Promise((r) => setTimeout(r, 2000)); // and a little after
  done = true;
  await sampler;
  files.forEach((_, i) => (gaps[i] = Math.max(gaps[i]!, Date.now() - last[i]!)));
  return { ran, gaps };
}

async function heartbeat(name: string): Promise<Sandbox> {
  const loop = `i=0; while :; do i=$((i+1)); echo $i >> /hb/${name}; usleep 100000; done`;
  ok(podman("run", "-d", "--name", name, "--network", "none", "-v", `${hbDir}:/hb`, image, "sh", "-c", loop), `podman run ${name}`);
  const file = join(hbDir, name);
  const deadline = Date.now() + 120_000;
  while (!(existsSync(file) && statSync(file).size > 20)) {
    if (Date.now() > deadline) throw new Error(`${name} wrote no heartbeat within 120 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return sandbox(name);
}

// Nothing of husk on the filesystem: the overlays' upper layers of /usr and
// /etc hold no file (only directories, the whiteouts of node and bun, and
// podman's own lock in /etc/cni).
function leftovers(): string[] {
  const r = spawnSync("find", [box.upper("/usr"), box.upper("/etc"), "(", "-type", "f", "-o", "-type", "l", ")", "-not", "-path", "*/cni/*"], { encoding: "utf8" });
  const listed = box.sh("ls -A /etc/husk /run/husk; ls -d /usr/bin/husk /usr/share/husk /usr/share/doc/husk 2>/dev/null").stdout;
  return [...r.stdout.split("\n").filter(Boolean), ...listed.split("\n").filter((l) => l && !l.endsWith(":"))];
}

describe.skipIf(!!skip)("the Debian package", () => {
  beforeAll(async () => {
    copyFileSync(DIST_HUSK, husk); // others may rebuild dist/husk meanwhile
    cur = buildPackage({ binary: husk, out: join(work, "current"), guestCache: TEST_GUEST_DIR });
    prev = buildPackage({ binary: releaseBinary(previous), out: join(work, "previous"), guestCache: TEST_GUEST_DIR });
    mkdirSync(hbDir, { recursive: true });
    const conf = (name: string) => join(work, name);
    box = await Throwaway.start(join(work, "root"), {
      CONTAINERS_STORAGE_CONF: conf("storage.conf"),
      CONTAINERS_CONF: conf("containers.conf"),
    });
    writeFileSync(conf("storage.conf"), `[storage]\ndriver = "vfs"\nrunroot = "${work}/pm-run"\ngraphroot = "${work}/pm-graph"\n`);
    // Podman's default rlimits need CAP_SYS_RESOURCE, which we lack here.
    writeFileSync(conf("containers.conf"),
      `[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\ntmp_dir = "${work}/pm-tmp"\n`);
    ok(box.run(["podman", "import", busyboxRootfsTar(join(work, "img")), image]), "podman import"); // before husk is installed
  }, VM_MS);

  afterAll(() => {
    if (box) {
      podman("rm", "-a", "-f", "--time", "0");
      box.stop();
    }
    rmSync(work, { recursive: true, force: true });
  });

  test("holds the binary, the guest assets, the conffile and docs, with plain modes, no build-machine paths, in a .deb and a tarball of the same tree", () => {
    const x = join(work, "extracted");
    ok(box.run(["dpkg-deb", "-R", cur.deb, x]), "dpkg-deb -R");
    const listing = spawnSync("dpkg-deb", ["-c", cur.deb], { encoding: "utf8" }).stdout.trim().split("\n");
    const entries = listing.map((l) => {
      const [mode, owner, , , , path] = l.split(/\s+/);
      return { mode: mode!, owner: owner!, path: path!.replace(/^\.\//, "/").replace(/\/$/, "") };
    });
    const paths = entries.map((e) => e.path).filter((p) => p !== "");
    const asset = `${GUEST}/${cur.assetsVersion}`;
    for (const p of ["/usr/bin/husk", "/etc/husk/config.toml", `${asset}/manifest.json`, `${asset}/vmlinux`, `${asset}/initrd.cpio`, `${asset}/husk`, `${asset}/virtiofsd/virtiofsd`, "/usr/share/doc/husk/copyright", "/usr/share/doc/husk/installing.md"])
      expect(paths).toContain(p);
    const allowed = /^\/(etc|usr|usr\/bin|usr\/share|usr\/share\/doc|etc\/husk(\/config\.toml)?|usr\/bin\/husk|usr\/share\/husk(\/.*)?|usr\/share\/doc\/husk(\/.*)?)$/;
    expect(paths.filter((p) => !allowed.test(p))).toEqual([]);
    expect(paths.filter((p) => p.startsWith(`${GUEST}/`) && !p.startsWith(asset))).toEqual([]); // one asset version
    expect(new Set(entries.map((e) => e.owner))).toEqual(new Set(["root/root"]));
    expect(entries.filter((e) => !["drwxr-xr-x", "-rwxr-xr-x", "-rw-r--r--", "hrwxr-xr-x"].includes(e.mode))).toEqual([]);
    const mode = (p: string) => entries.find((e) => e.path === p)!.mode;
    expect([mode("/usr/bin/husk"), mode("/etc/husk/config.toml")]).toEqual(["-rwxr-xr-x", "-rw-r--r--"]);
    // The guest's agent is the same binary: a hard link, stored once.
    expect(listing.find((l) => l.includes(`.${asset}/husk `))).toMatch(/^hrwxr-xr-x .* link to \.\/usr\/bin\/husk$/);
    expect(statSync(join(x, asset, "husk")).ino).toBe(statSync(join(x, "usr/bin/husk")).ino);

    // The binary as built (never stripped), assets that match their manifest.
    expect(sha256(join(x, "usr/bin/husk"))).toBe(sha256(husk));
    const manifest = JSON.parse(readFileSync(join(x, asset, "manifest.json"), "utf8"));
    for (const f of Object.values(manifest.files).filter((f): f is { path: string; sha256: string } => typeof f === "object"))
      expect(sha256(join(x, asset, f.path)), f.path).toBe(f.sha256);
    expect(Bun.TOML.parse(readFileSync(join(x, "etc/husk/config.toml"), "utf8"))).toMatchObject({ guest: { dir: GUEST } });

    // Control: the conffile, Debian-only dependencies, a VMM recommended, scripts that stay offline.
    expect(readFileSync(join(x, "DEBIAN/conffiles"), "utf8")).toBe("/etc/husk/config.toml\n");
    const control = readFileSync(join(x, "DEBIAN/control"), "utf8");
    expect(control).toMatch(/^Depends: libc6 \(>= [\d.]+\), mount$/m);
    expect(control).toMatch(/^Recommends: qemu-system-x86 \| cloud-hypervisor/m);
    expect(control).toMatch(/^X-Husk-Layout: \d+$/m);
    for (const s of ["preinst", "postinst", "postrm"]) expect(readFileSync(join(x, "DEBIAN", s), "utf8")).not.toMatch(/curl|wget|apt-get|https?:|npm|node|bun/);

    // No path of the machine that built it, anywhere.
    const needles = [REPO, join(homedir(), ".cache"), TEST_GUEST_DIR, work, tmpdir() + "/husk-package-"];
    const grep = spawnSync("grep", ["-rlaF", ...needles.flatMap((n) => ["-e", n]), x], { encoding: "utf8" });
    expect(grep.stdout.trim()).toBe("");

    // The tarball: the same tree without the maintainer scripts.
    const tar = spawnSync("tar", ["-I", "zstd", "-tf", cur.tarball], { encoding: "utf8", maxBuffer: 16 << 20 }).stdout;
    const inTar = tar.split("\n").filter(Boolean).map((p) => p.replace(/^\.\//, "/").replace(/\/$/, "")).filter((p) => p && p !== ".");
    expect(inTar.sort()).toEqual([...paths].sort());

    // Same inputs, same bytes.
    const again = buildPackage({ binary: husk, out: join(work, "again"), guestCache: TEST_GUEST_DIR });
    expect(sha256(again.deb)).toBe(sha256(cur.deb));
    expect(sha256(again.tarball)).toBe(sha256(cur.tarball));
  }, 300_000);

  test("installs offline without node or bun; podman runs a container in a VM booted from the package's assets; purge leaves nothing", () => {
    expect(box.sh("cat /proc/net/dev").stdout).not.toMatch(/^\s*(?!lo:)\w+:/m); // only lo
    expect(box.sh("command -v node || command -v bun || echo none").stdout.trim()).toBe("none");
    ok(dpkg("-i", cur.deb), "dpkg -i");
    expect(installedVersion()).toBe(`${cur.version} install ok installed`);
    const run = podman("run", "--rm", "--network", "none", image, "uname", "-r");
    ok(run, "podman run");
    expect(run.stdout.trim()).toBe(cur.assetsVersion.replace(/-[0-9a-f]{12}$/, "")); // the guest's kernel
    expect(run.stdout.trim()).not.toBe(spawnSync("uname", ["-r"], { encoding: "utf8" }).stdout.trim());
    ok(dpkg("--purge", "husk"), "dpkg --purge");
    expect(leftovers()).toEqual([]);
  }, VM_MS);

  test(`upgrade ${previous.version} → current under two VM containers writing heartbeats, then rollback, remove and purge`, async () => {
    ok(dpkg("-i", prev.deb), "dpkg -i previous");
    expect(installedVersion()).toBe(`${prev.version} install ok installed`);
    const a = await heartbeat("hb-a");
    const b = await heartbeat("hb-b");
    expect([a.assetsVersion, b.assetsVersion]).toEqual([prev.assetsVersion, prev.assetsVersion]);

    // dpkg -i of the current package while both write.
    const up = await longestGap([join(hbDir, "hb-a"), join(hbDir, "hb-b")], () => box.runAsync(dpkgArgv("-i", cur.deb)));
    console.log(`package upgrade ${prev.version} → ${cur.version}: longest heartbeat gaps ${up.gaps.join(" ms, ")} ms`);
    ok(up.ran, "dpkg -i current over previous");
    expect(installedVersion()).toBe(`${cur.version} install ok installed`);
    expect(Math.max(...up.gaps)).toBeLessThan(1000);

    // The old shims and VMs run on, from the replaced binary and the kept assets.
    for (const s of [a, b]) {
      expect(exeOf(s.pid)).toBe("/usr/bin/husk (deleted)");
      expect(exeOf(s.vmm)).not.toBe("");
    }
    expect(guestVersions()).toEqual([prev.assetsVersion, cur.assetsVersion].sort());

    // The new husk manages the old containers.
    const ex = podman("exec", "hb-a", "sh", "-c", "echo from-exec; exit 3");
    expect([ex.status, ex.stdout.trim()]).toEqual([3, "from-exec"]);
    const ps = box.run(["husk", "ps", a.id]);
    ok(ps, "husk ps");
    expect(ps.stdout).toMatch(/PID/);
    ok(podman("pause", "hb-a"), "podman pause");
    expect(podman("inspect", "--format", "{{.State.Status}}", "hb-a").stdout.trim()).toBe("paused");
    ok(podman("unpause", "hb-a"), "podman unpause");
    ok(podman("kill", "hb-a"), "podman kill");
    ok(podman("rm", "-f", "hb-a"), "podman rm");

    // A new container boots the new assets; gc keeps what the old one booted.
    ok(podman("run", "-d", "--name", "new", "--network", "none", image, "sleep", "1000"), "podman run new");
    const n = sandbox("new");
    expect(n.assetsVersion).toBe(cur.assetsVersion);
    expect(exeOf(n.pid)).toBe("/usr/bin/husk");
    const gc = box.run(["husk", "gc", "--assets", "--dry-run"]);
    expect(gc.stdout).toContain(`kept assets ${prev.assetsVersion}: booted by sandbox ${b.id}`);

    // Rollback: the previous package again, under the new container and hb-b.
    const down = await longestGap([join(hbDir, "hb-b")], () => box.runAsync(dpkgArgv("-i", prev.deb)));
    console.log(`package rollback ${cur.version} → ${prev.version}: longest heartbeat gap ${down.gaps[0]} ms`);
    ok(down.ran, "dpkg -i previous over current");
    expect(installedVersion()).toBe(`${prev.version} install ok installed`);
    expect(down.gaps[0]).toBeLessThan(1000);
    expect(guestVersions()).toContain(cur.assetsVersion); // the new container booted it
    const ex2 = podman("exec", "new", "sh", "-c", "echo back");
    expect([ex2.status, ex2.stdout.trim()]).toEqual([0, "back"]);
    ok(podman("pause", "new"), "podman pause (rolled back)");
    ok(podman("unpause", "new"), "podman unpause (rolled back)");
    ok(podman("rm", "-f", "--time", "0", "new"), "podman rm new");
    ok(podman("rm", "-f", "--time", "0", "hb-b"), "podman rm hb-b");

    // Remove keeps the conffile; purge takes it too.
    ok(dpkg("-r", "husk"), "dpkg -r");
    expect(leftovers()).toEqual(["config.toml"]);
    ok(dpkg("--purge", "husk"), "dpkg --purge");
    expect(leftovers()).toEqual([]);
    const gone = Date.now() + 30_000;
    while (box.processes().length && Date.now() < gone) await new Promise((r) => setTimeout(r, 200));
    expect(box.processes().map((p) => exeOf(p))).toEqual([]);
  }, VM_MS);

  test("bad input: dpkg killed mid-upgrade, a newer major persist format in use, a corrupted asset file; then gc --assets", async () => {
    ok(dpkg("-i", prev.deb), "dpkg -i previous");
    const c = await heartbeat("hb-c");
    const hb = [join(hbDir, "hb-c")];

    // SIGKILL while dpkg unpacks the upgrade: dpkg marks the package
    // half-installed (it asks for a reinstall, which `dpkg --configure -a`
    // does not do); the old binary stays in place and the VM runs on.
    const killed = await longestGap(hb, async () => {
      const run = box.spawn(dpkgArgv("-i", cur.deb));
      const partial = join(box.upper("/usr"), "bin/husk.dpkg-new");
      while (!existsSync(partial)) await new Promise((r) => setTimeout(r, 10));
      process.kill(run.pid, "SIGKILL");
      return run.done;
    });
    expect(killed.ran.status).not.toBe(0);
    expect(installedVersion()).toBe(`${prev.version} install reinstreq half-installed`);
    expect(box.run(["husk", "--version"]).stdout).toContain(prev.version.replace(/\+.*/, ""));
    const again = await longestGap(hb, () => box.runAsync(dpkgArgv("-i", cur.deb)));
    console.log(`dpkg SIGKILLed while unpacking, then dpkg -i again: longest heartbeat gaps ${killed.gaps[0]} ms, ${again.gaps[0]} ms`);
    ok(again.ran, "dpkg -i after the kill");
    expect(installedVersion()).toBe(`${cur.version} install ok installed`);
    expect(guestVersions()).toEqual([prev.assetsVersion, cur.assetsVersion].sort());
    expect(Math.max(killed.gaps[0]!, again.gaps[0]!)).toBeLessThan(1000);
    expect(exeOf(c.pid)).toBe("/usr/bin/husk (deleted)");

    // A sandbox in a newer major format than the previous release reads:
    // rolling back is refused before anything is unpacked.
    box.sh("mkdir -p /run/husk/future && echo '{\"formatVersion\": \"2.0\", \"id\": \"future\"}' > /run/husk/future/persist.json");
    const refused = dpkg("-i", prev.deb);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain(`husk ${prev.version} cannot be installed: /run/husk/future/persist.json has persist format 2.0, newer than this husk reads (>=1.0 <2.0); the installed husk was left in place.`);
    expect(installedVersion()).toBe(`${cur.version} install ok installed`);
    expect(sha256(join(box.upper("/usr"), "bin/husk"))).toBe(sha256(husk));
    box.sh("rm -rf /run/husk/future");
    // The same in the sqlite store (made here, copied into the throw-away /run/husk).
    const db = new Database(join(work, "persist.db"));
    db.run("CREATE TABLE sandboxes (id TEXT PRIMARY KEY, format_version TEXT NOT NULL, doc TEXT NOT NULL)");
    db.run("INSERT INTO sandboxes VALUES ('future', '2.1', ?)", [JSON.stringify({ formatVersion: "2.1", id: "future" })]);
    db.close();
    ok(box.run(["cp", join(work, "persist.db"), "/run/husk/persist.db"]), "cp persist.db");
    const refusedDb = dpkg("-i", prev.deb);
    expect(refusedDb.status).not.toBe(0);
    expect(refusedDb.stderr).toContain(`husk ${prev.version} cannot be installed: /run/husk/persist.db has persist format 2.1, newer than this husk reads`);
    expect(installedVersion()).toBe(`${cur.version} install ok installed`);
    box.sh("rm -f /run/husk/persist.db*");

    // A corrupted kernel: no VM boots from it, and the error names the file
    // and both checksums; the package repairs it.
    const kernel = `${GUEST}/${cur.assetsVersion}/vmlinux`;
    const manifest = JSON.parse(box.run(["cat", `${GUEST}/${cur.assetsVersion}/manifest.json`]).stdout);
    ok(box.sh(`printf CORRUPTEDCORRUPT | dd of=${kernel} bs=1 seek=4096 conv=notrunc status=none`), "corrupt");
    const bad = box.run(["sha256sum", kernel]).stdout.split(" ")[0]!;
    const run = podman("run", "--rm", "--network", "none", image, "true");
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain(`guest asset file ${kernel} (assets ${cur.assetsVersion}) is corrupted: its sha256 is ${bad}, its manifest says ${manifest.files.kernel.sha256}`);
    expect(podman("ps", "-a", "--format", "{{.Names}}").stdout.trim()).toBe("hb-c");
    // Reinstalled, interrupted after the unpack: --configure -a completes it.
    const repair = await longestGap(hb, async () => {
      ok(await box.runAsync(dpkgArgv("--unpack", cur.deb)), "dpkg --unpack");
      expect(installedVersion()).toBe(`${cur.version} install ok unpacked`);
      return box.runAsync(dpkgArgv("--configure", "-a"));
    });
    ok(repair.ran, "dpkg --configure -a");
    expect(installedVersion()).toBe(`${cur.version} install ok installed`);
    expect(box.run(["sha256sum", kernel]).stdout.split(" ")[0]).toBe(manifest.files.kernel.sha256);
    expect(guestVersions()).toEqual([prev.assetsVersion, cur.assetsVersion].sort());
    expect(repair.gaps[0]).toBeLessThan(1000);

    // The old container, managed by the new husk, then gone: gc takes its assets.
    expect(podman("exec", "hb-c", "echo", "alive").stdout.trim()).toBe("alive");
    ok(podman("rm", "-f", "--time", "0", "hb-c"), "podman rm hb-c");
    const gc = box.run(["husk", "gc", "--assets"]);
    ok(gc, "husk gc --assets");
    expect(gc.stdout).toContain(`removed assets ${prev.assetsVersion}: no sandbox uses it`);
    expect(guestVersions()).toEqual([cur.assetsVersion]);
    ok(dpkg("--purge", "husk"), "dpkg --purge");
    expect(leftovers()).toEqual([]);
  }, VM_MS);
});
