import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { builtBinary } from "../helpers/husk.ts";
import { qemu10 } from "../helpers/qemu10.ts";
import { isAlive } from "../../lib/core/index.ts";
import { DOC_FILE, FORMATS } from "../../lib/persist/index.ts";
import { REPO, baselinePath, bufBreaking, bufBuild, imageAtCommit, loadReleases, releaseBinary, type Release } from "../../compat/index.ts";
import { Matrix, OPS, type Op } from "./matrix.ts";
import { QEMU, TEST_GUEST_DIR, buildAssets, vmSkipReason } from "../qemu/assets.ts";

// Every listed release against this tree, both ways (docs/compatibility.md):
// sandboxes an old husk left running are managed by the current one (upgrade),
// and sandboxes the current husk made are managed by the old one (rollback).

const releases = loadReleases();
const matrix = new Matrix();
// Only a rollback meets documents of a newer format than its own; only an
// upgrade finds documents of an older format to convert (format).
const UPGRADE: Op[] = OPS.filter((op) => op !== "refuse" && op !== "minor");
const ROLLBACK: Op[] = OPS.filter((op) => op !== "format");
const upRow = (r: Release) => `${r.version} → current`;
const vmRow = (r: Release) => `${r.version} → current (qemu)`;
const vmDownRow = (r: Release) => `current → ${r.version} (qemu)`;
const VM_OPS: Op[] = ["state", "exec", "ps", "pause", "agent", "kill", "delete", "clean"];
const vmSkip = vmSkipReason();
const downRow = (r: Release) => `current → ${r.version}`;
for (const r of releases) {
  matrix.row(upRow(r), UPGRADE);
  matrix.row(downRow(r), ROLLBACK);
  if (!vmSkip) matrix.row(vmRow(r), [...VM_OPS, "format"]);
  if (!vmSkip) matrix.row(vmDownRow(r), [...VM_OPS, "minor"]);
}

// A steady process set (sh and one sleep) so `ps` has nothing that comes and goes.
const TRAP_TERM = ["sh", "-c", "trap 'echo got TERM; exit 7' TERM; echo started; sleep 1000 & wait"];
const work = mkdtempSync(join(tmpdir(), "husk-compat-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let seq = 0;
const fresh = (tag: string) => `cv${process.pid}-${++seq}-${tag}`;

interface Doc {
  formatVersion: string;
  writtenBy: { version: string; commit: string };
  containers: Record<string, unknown>[];
  hypervisor: { pid: number; pidStartTime?: number };
  agent: { version: string; capabilities: string[] };
}
const docPath = (root: string, sandbox: string) => join(root, sandbox, DOC_FILE);
const readDoc = (root: string, sandbox: string): Doc => JSON.parse(readFileSync(docPath(root, sandbox), "utf8"));
const [MAJOR, MINOR] = FORMATS.current.split(".").map(Number) as [number, number];

// Makes a document look written by a later minor release: a bumped minor and
// fields no release knows yet, at the top and in every container.
function fromNextMinor(root: string, sandbox: string): void {
  const doc = readDoc(root, sandbox);
  const containers = doc.containers.map((c) => ({ ...c, notYetKnown: 1 }));
  const next = { ...doc, formatVersion: `${MAJOR}.${MINOR + 1}`, notYetKnown: { kept: true }, containers };
  writeFileSync(docPath(root, sandbox), JSON.stringify(next, null, 2));
}

// What older releases did differently. 0.1.0's `ps` listed the container's
// own (host) pids; its agent had no `network` capability (format 1.0 and the
// network came together in 0.2.0).
const listsHostPids = (manager: string, older?: Release) => manager !== builtBinary() && older?.version === "0.1.0";
const lacksNetwork = (r: Release) => r.persistFormat === "1.0";

// The current `ps`: json is the pid published for init (the shim); the
// table lists the container's processes (sh and its sleep), init's with it.
function expectPs(m: Cli, id: string, initPid: number): void {
  expect(JSON.parse(m.ok(["ps", "--format", "json", id]))).toEqual([initPid]);
  const rows = m.ok(["ps", id]).trim().split("\n").slice(1).map((l) => l.split(/ +/));
  expect(rows.map((r) => r[3]).sort()).toEqual(["sh", "sleep"]);
  expect(rows.find((r) => r[3] === "sh")?.[0]).toBe(String(initPid));
}

// The binary a process runs; "(deleted)" when a rebuild replaced it meanwhile.
const exeOf = (pid: number) => readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, "");

// One created-only and one running container, made by `maker`.
function createPair(maker: Cli): { created: string; running: string; out: string } {
  const ids = { created: fresh("created"), running: fresh("running") };
  const out = join(work, `${ids.running}.out`);
  for (const id of [ids.created, ids.running]) {
    const bundle = makeBusyboxBundle(join(work, `${id}-bundle`), { args: TRAP_TERM });
    maker.ok(["create", "--bundle", bundle, id], { stdioFile: id === ids.running ? out : join(work, `${id}.out`) });
  }
  maker.ok(["start", ids.running]);
  return { ...ids, out };
}

// Whatever a failed scenario left behind goes, with either binary's help.
async function sweep(cli: Cli, bins: string[], ids: string[]): Promise<void> {
  for (const bin of bins) for (const id of ids) cli.using(bin).run(["delete", "--force", id]);
  await until(() => processesUsing(cli.root).length === 0, 10_000, "processes under the root to exit").catch(() => {
    for (const pid of processesUsing(cli.root)) process.kill(pid, "SIGKILL");
  });
}

// `maker` creates, `manager` runs every operation; the agent stays `maker`'s.
// A rollback to `older` also meets a newer minor and a newer major format.
async function scenario(row: string, maker: string, manager: string, older?: Release, makerRelease?: Release) {
  const cli = new Cli();
  const m = cli.using(manager);
  const { created, running, out } = createPair(cli.using(maker));
  try {
    const made = { created: cli.using(maker).state(created), running: cli.using(maker).state(running) };
    const before = readDoc(cli.root, running);
    const rawMade = readFileSync(docPath(cli.root, running), "utf8");
    await until(() => cli.output(out).includes("started"), 10_000, "the running container's output");
    if (older) fromNextMinor(cli.root, running);

    await matrix.cell(row, "state", () => {
      expect(m.state(created)).toMatchObject({ id: created, status: "created", pid: made.created.pid });
      expect(m.state(running)).toMatchObject({ id: running, status: "running", pid: made.running.pid });
    });
    await matrix.cell(row, "list", () => {
      const listed = JSON.parse(m.ok(["list", "--format", "json"])) as { id: string; status: string }[];
      const pairs = listed.map((s) => [s.id, s.status]).sort();
      expect(pairs).toEqual([[created, "created"], [running, "running"]]);
    });
    await matrix.cell(row, "exec", () => {
      const r = m.run(["exec", running, "sh", "-c", "echo out; echo err >&2; exit 5"]);
      expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ status: 5, stdout: "out\n", stderr: "err\n" });
      expect(m.ok(["exec", running, "cat", "/proc/1/cmdline"])).toContain("trap");
    });
    await matrix.cell(row, "ps", () => {
      if (!listsHostPids(manager, older)) return expectPs(m, running, made.running.pid);
      // 0.1.0 listed the container's own (host) pids.
      const pids = JSON.parse(m.ok(["ps", "--format", "json", running])) as number[];
      expect(pids).toHaveLength(2);
      expect(pids.filter((p) => !isAlive(p))).toEqual([]);
      const cmds = pids.map((p) => readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0")[0]).sort();
      expect(cmds).toEqual(["sh", "sleep"]);
    });
    // The manager neither restarted the agent nor renegotiated what it may call.
    await matrix.cell(row, "agent", () => {
      const after = readDoc(cli.root, running);
      expect(after.hypervisor.pid).toBe(before.hypervisor.pid);
      expect(isAlive(after.hypervisor.pid, after.hypervisor.pidStartTime)).toBe(true);
      expect(exeOf(after.hypervisor.pid)).toBe(realpathSync(maker));
      expect(after.agent).toEqual(before.agent);
    });
    const rawBeforePause = readFileSync(docPath(cli.root, running), "utf8");
    await matrix.cell(row, "pause", async () => {
      m.ok(["pause", running]);
      expect(m.state(running).status).toBe("paused");
      m.ok(["resume", running]);
      expect(m.state(running).status).toBe("running");
    });
    if (!older) await matrix.cell(row, "format", () => upgradedOnWrite(makerRelease, rawMade, rawBeforePause, readDoc(cli.root, running)));
    if (older) {
      // pause and resume made the older husk write the document back: what it did not know is still there.
      await matrix.cell(row, "minor", () => {
        const doc = readDoc(cli.root, running) as Doc & { notYetKnown?: unknown };
        expect(older.commit.startsWith(doc.writtenBy.commit)).toBe(true);
        expect(doc.notYetKnown).toEqual({ kept: true });
        expect(doc.containers.map((c) => c.notYetKnown)).toEqual([1]);
      });
      await matrix.cell(row, "refuse", () => refuseNewerMajor(manager)(cli, running));
    }
    await matrix.cell(row, "kill", async () => {
      m.ok(["kill", running, "TERM"]);
      await until(() => m.state(running).status === "stopped", 10_000, `${running} to stop after TERM`);
      expect(cli.output(out)).toContain("got TERM");
      m.ok(["kill", created, "KILL"]);
      await until(() => m.state(created).status === "stopped", 10_000, `${created} to stop after KILL`);
      expect(isAlive(made.running.pid)).toBe(false);
    });
    await matrix.cell(row, "delete", () => {
      for (const id of [running, created]) {
        m.ok(["delete", id]);
        expect(m.run(["state", id]).stderr).toMatch(new RegExp(`container ${id} does not exist`));
      }
    });
    await matrix.cell(row, "clean", async () => {
      expect(cli.leftovers()).toEqual([]);
      await until(() => processesUsing(cli.root).length === 0, 10_000, "shims and agents to exit");
    });
  } finally {
    await sweep(cli, [builtBinary(), manager, maker], [created, running]);
  }
  matrix.assertRow(row, OPS.filter((op) => op !== "protocol"));
}

// An older release's document is rewritten in the current format only when
// the current husk changes it: reading (state, list, exec, ps) leaves its
// bytes alone; the first write (pause) makes it the current format, with the
// typed VM record built from what the older release wrote.
function upgradedOnWrite(release: Release | undefined, made: string, beforeWrite: string, after: Doc & { vm?: { driver: string } }) {
  expect(JSON.parse(made).formatVersion).toBe(release?.persistFormat);
  expect(beforeWrite).toBe(made);
  expect(after.formatVersion).toBe(FORMATS.current);
  expect(after.vm?.driver).toBe(JSON.parse(made).hypervisor.driver);
  expect(after.hypervisor.pid).toBe(JSON.parse(made).hypervisor.pid); // still what the older release reads
}

// Guest assets an old husk built: its kernel, its init, its agent.
function oldGuestDir(old: string, release: Release): string {
  const guestDir = join(work, `guest-${release.version}`);
  if (existsSync(join(guestDir, ".built"))) return guestDir;
  const built = new Cli().using(old).run(["guest", "build", "--dest", guestDir, "--agent", old]);
  if (built.status !== 0) throw new Error(`old husk guest build: ${built.stderr}`);
  writeFileSync(join(guestDir, ".built"), "");
  return guestDir;
}

// A VM sandbox one husk booted (with its own guest assets: kernel and agent)
// is managed by the other without a restart: the old one's by the current
// husk (upgrade), the current one's by the old husk (rollback).
async function vmScenario(row: string, maker: string, manager: string, guestDir: string, older?: Release, makerRelease?: Release) {
  const cli = new Cli({ HUSK_HYPERVISOR: "qemu", HUSK_GUEST_DIR: guestDir });
  const [mk, m] = [cli.using(maker), cli.using(manager)];
  const id = fresh("vm");
  const out = join(work, `${id}.out`);
  try {
    mk.ok(["create", "--bundle", makeBusyboxBundle(join(work, `${id}-bundle`), { args: TRAP_TERM }), id], { stdioFile: out });
    mk.ok(["start", id]);
    const before = readDoc(cli.root, id) as Doc & { hypervisor: { assetsVersion?: string } };
    const rawMade = readFileSync(docPath(cli.root, id), "utf8");
    await until(() => cli.output(out).includes("started"), 60_000, "the VM container's output");
    await matrix.cell(row, "state", () => expect(m.state(id)).toMatchObject({ id, status: "running" }));
    await matrix.cell(row, "exec", () => {
      const r = m.run(["exec", id, "sh", "-c", "echo out; exit 5"]);
      expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 5, stdout: "out\n" });
    });
    await matrix.cell(row, "ps", () =>
      !listsHostPids(manager, older)
        ? expectPs(m, id, mk.state(id).pid)
        : expect((JSON.parse(m.ok(["ps", "--format", "json", id])) as number[]).length).toBe(2),
    );
    // Same VM, same assets (kernel and agent of the old release), same negotiated set.
    await matrix.cell(row, "agent", () => {
      const after = readDoc(cli.root, id) as typeof before;
      expect(after.hypervisor.pid).toBe(before.hypervisor.pid);
      expect(after.hypervisor.assetsVersion).toBe(before.hypervisor.assetsVersion);
      expect(after.agent).toEqual(before.agent);
      expect(exeOf(after.hypervisor.pid)).toBe(realpathSync(QEMU!));
    });
    const rawBeforePause = readFileSync(docPath(cli.root, id), "utf8");
    await matrix.cell(row, "pause", async () => {
      m.ok(["pause", id]);
      expect(m.state(id).status).toBe("paused");
      m.ok(["resume", id]);
      expect(m.state(id).status).toBe("running");
      const r = m.run(["exec", id, "echo", "after-resume"]);
      expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 0, stdout: "after-resume\n" });
    });
    if (!older) await matrix.cell(row, "format", () => upgradedOnWrite(makerRelease, rawMade, rawBeforePause, readDoc(cli.root, id)));
    // The older release wrote the current husk's document back: the typed
    // sections it does not know are still there, and its 1.0 view of them worked.
    if (older)
      await matrix.cell(row, "minor", () => {
        const doc = readDoc(cli.root, id) as Doc & { vm?: unknown; proxy?: unknown };
        expect(doc.formatVersion).toBe(older.persistFormat);
        expect(older.commit.startsWith(doc.writtenBy.commit)).toBe(true);
        expect(doc.vm).toEqual((JSON.parse(rawMade) as typeof doc).vm);
        expect(doc.proxy).toEqual((JSON.parse(rawMade) as typeof doc).proxy);
      });
    await matrix.cell(row, "kill", async () => {
      m.ok(["kill", id, "TERM"]);
      await until(() => m.state(id).status === "stopped", 30_000, `${id} to stop after TERM`);
      expect(cli.output(out)).toContain("got TERM");
    });
    await matrix.cell(row, "delete", () => m.ok(["delete", id]));
    await matrix.cell(row, "clean", async () => {
      await until(() => processesUsing(cli.root).length === 0, 20_000, "QEMU, virtiofsd, proxy and shim to exit");
      expect(cli.leftovers().filter((n) => n !== "qemu")).toEqual([]);
    });
  } finally {
    await sweep(cli, [builtBinary(), maker, manager], [id]);
  }
  matrix.assertRow(row, [...VM_OPS, older ? "minor" : "format"]);
}

// An older husk given a document of a newer major format refuses every
// operation, says why, and changes nothing: not the file, not the container.
function refuseNewerMajor(old: string) {
  return (cli: Cli, running: string) => {
    const copy = new Cli().using(old);
    const file = docPath(copy.root, running);
    mkdirSync(join(copy.root, running), { recursive: true });
    const newer = `${MAJOR + 1}.0`;
    const text = JSON.stringify({ ...readDoc(cli.root, running), formatVersion: newer }, null, 2);
    writeFileSync(file, text);
    const mtime = statSync(file).mtimeMs;
    for (const args of [["state", running], ["exec", running, "true"], ["ps", running], ["kill", running, "KILL"], ["delete", "--force", running]]) {
      const r = copy.run(args);
      expect(r.status, `${args[0]} of a format ${newer} document`).not.toBe(0);
      expect(r.stderr).toContain(file);
      expect(r.stderr).toMatch(new RegExp(`format ${newer.replace(".", "\\.")}.*newer`));
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    expect(readFileSync(file, "utf8")).toBe(text);
    expect(statSync(file).mtimeMs).toBe(mtime);
    expect(processesUsing(copy.root)).toEqual([]);
    // The document pointed at the live container and its agent: both untouched.
    expect(cli.using(old).state(running).status).toBe("running");
  };
}

describe.each(releases.map((r) => [r.version, r] as const))("release %s", (_, release) => {
  let old = "";
  beforeAll(() => {
    old = releaseBinary(release, { log: (line) => console.log(line) });
  }, 900_000);

  test("its binary is the release it claims to be", () => {
    const info = JSON.parse(new Cli().using(old).ok(["version", "--json"]));
    expect(info.version).toBe(release.version);
    expect(release.commit.startsWith(info.commit)).toBe(true);
    expect(info.persist.writes).toBe(release.persistFormat);
  });

  test("upgrade: the current husk manages what it left running", async () => {
    await scenario(upRow(release), old, builtBinary(), undefined, release);
  }, 180_000);

  test("rollback: it manages what the current husk made, reads a newer minor, refuses a newer major", async () => {
    await scenario(downRow(release), builtBinary(), old, release);
  }, 180_000);

  test.skipIf(!!vmSkip)("upgrade (qemu): the current husk manages a VM sandbox it left running", async () => {
    await vmScenario(vmRow(release), old, builtBinary(), oldGuestDir(old, release), undefined, release);
  }, 600_000);

  test.skipIf(!!vmSkip)("rollback (qemu): it manages a VM sandbox the current husk made (format 1.1)", async () => {
    const built = buildAssets();
    if (built.status !== 0) throw new Error(`husk guest build: ${built.stderr}`);
    await vmScenario(vmDownRow(release), builtBinary(), old, TEST_GUEST_DIR, release);
  }, 600_000);

  // Its agent lacks the `network` capability: the current husk refuses to give
  // it a network namespace rather than leave the container unnetworked.
  if (lacksNetwork(release)) test.skipIf(!!vmSkip)("its agent, given a network it cannot configure, fails the create by capability and leaves the netns as it was", () => {
    const caps = JSON.parse(new Cli().using(old).ok(["version", "--json"])).protocol.capabilities as string[];
    expect(caps).not.toContain("network");
    const ns = `husk-cv-${process.pid}`;
    spawnSync("ip", ["netns", "add", ns]);
    try {
      spawnSync("ip", ["-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"]);
      const cli = new Cli({ HUSK_HYPERVISOR: "qemu", HUSK_GUEST_DIR: oldGuestDir(old, release) });
      const b = makeBusyboxBundle(join(work, `net-${release.version}`), { args: ["true"] });
      const spec = JSON.parse(readFileSync(join(b, "config.json"), "utf8"));
      spec.linux.namespaces = spec.linux.namespaces.map((n: { type: string }) => (n.type === "network" ? { type: "network", path: `/run/netns/${ns}` } : n));
      writeFileSync(join(b, "config.json"), JSON.stringify(spec));
      const r = cli.using(builtBinary()).run(["create", "--bundle", b, fresh("net")]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`agent ${release.version.replaceAll(".", "\\.")} in sandbox \\S+ lacks capability 'network'`));
      expect(spawnSync("ip", ["-n", ns, "-o", "link"], { encoding: "utf8" }).stdout).not.toContain("_husk");
      expect(cli.leftovers().filter((n) => n !== "qemu")).toEqual([]);
      expect(processesUsing(cli.root)).toEqual([]);
    } finally {
      spawnSync("ip", ["netns", "del", ns]);
    }
  }, 300_000);

  // Its agent cannot give a device restored from a VM template a new MAC: the
  // current husk, able to restore networked sandboxes from templates (QEMU
  // 10), boots such a sandbox of its assets cold and keeps the reason.
  if (!lacksNetwork(release)) test.skipIf(!!vmSkip)("its assets under the current husk's VM templates: a networked sandbox boots cold, the reason kept beside the template; its checkpoint is not restored into a changed namespace", () => {
    const ns = `husk-cvt-${process.pid}`;
    spawnSync("ip", ["netns", "add", ns]);
    const guestDir = oldGuestDir(old, release);
    const cli = new Cli({ HUSK_HYPERVISOR: "qemu", HUSK_GUEST_DIR: guestDir, HUSK_QEMU: qemu10() }).using(builtBinary());
    const id = fresh("tpl");
    try {
      spawnSync("ip", ["-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"]);
      const mac = (JSON.parse(spawnSync("ip", ["-n", ns, "-j", "link", "show", "eth0"], { encoding: "utf8" }).stdout) as { address: string }[])[0]!.address;
      const b = makeBusyboxBundle(join(work, `tpl-${release.version}`), { args: ["sleep", "1000"] });
      const spec = JSON.parse(readFileSync(join(b, "config.json"), "utf8"));
      spec.linux.namespaces = spec.linux.namespaces.map((n: { type: string }) => (n.type === "network" ? { type: "network", path: `/run/netns/${ns}` } : n));
      writeFileSync(join(b, "config.json"), JSON.stringify(spec));
      cli.ok(["create", "--bundle", b, id], { stdioFile: join(work, `${id}.out`) });
      cli.ok(["start", id]);
      expect((JSON.parse(cli.ok(["inspect", id])) as { template?: unknown }).template).toBeUndefined();
      expect(cli.ok(["exec", id, "cat", "/sys/class/net/eth0/address"]).trim()).toBe(mac);
      const refused = readdirSync(join(guestDir, ".templates")).filter((n) => n.endsWith(".refused"));
      expect(refused).toHaveLength(1);
      const why = JSON.parse(readFileSync(join(guestDir, ".templates", refused[0]!), "utf8")).reason as string;
      expect(why).toMatch(/^the agent of guest assets \S+ cannot give a restored network device a new MAC \(no "network-remac"\)$/);
      // Nor can it configure the guest's network again: restoring its
      // checkpoint into a namespace whose address changed is refused by name.
      const image = join(work, `${id}.image`);
      cli.ok(["checkpoint", "--image-path", image, id]);
      cli.ok(["delete", "--force", id]);
      spawnSync("ip", ["-n", ns, "addr", "add", "10.77.0.2/24", "dev", "eth0"]);
      const r = cli.run(["restore", "--image-path", image, id]);
      expect(r.status).not.toBe(0);
      expect(r.stderr.trim()).toBe(
        `husk: restore: network namespace /run/netns/${ns} is not what sandbox ${id} was checkpointed with (eth0's addresses are 10.77.0.2/24, were none), ` +
          `and its agent cannot configure the guest's network again (no "network-reconfigure")`,
      );
      expect(spawnSync("ip", ["-n", ns, "-o", "link"], { encoding: "utf8" }).stdout).not.toContain("_husk");
    } finally {
      cli.run(["delete", "--force", id]);
      spawnSync("ip", ["netns", "del", ns]);
    }
    expect(processesUsing(cli.root)).toEqual([]);
  }, 600_000);

  test("protocol: the current proto is wire-compatible with its frozen baseline", async () => {
    const check = () => {
      // The baseline is exactly the proto of the release commit, never edited since.
      const [atCommit, frozen] = [join(work, `${release.version}-commit.binpb`), join(work, `${release.version}-frozen.binpb`)];
      const built = imageAtCommit(release.commit, atCommit);
      expect(built.ok, built.output).toBe(true);
      expect(bufBuild(baselinePath(release), frozen).ok).toBe(true);
      expect(readFileSync(frozen).equals(readFileSync(atCommit)), `${baselinePath(release)} is not the proto of ${release.commit}: a published baseline is never edited; ` +
          `before publishing, re-point with bun compat/cut-release.ts ${release.version} --commit ${release.commit}`).toBe(true);
      const breaking = bufBreaking(REPO, baselinePath(release));
      expect(breaking.output).toBe("");
      expect(breaking.ok).toBe(true);
    };
    await matrix.cell([upRow(release), downRow(release)], "protocol", check);
    matrix.assertRow(upRow(release), ["protocol"]);
  });
});

test("the matrix: every operation passed both ways", () => {
  console.log(matrix.render());
  expect(matrix.failures()).toEqual([]);
});
