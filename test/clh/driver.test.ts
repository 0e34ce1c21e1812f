import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { afterAll, describe, expect, test } from "vitest";
import { loadSettings, type Settings } from "../../lib/config/index.ts";
import { HuskError, isAlive } from "../../lib/core/index.ts";
import {
  checkpoint,
  clhApi,
  clhDriver,
  readSnapshot,
  restore,
  vmPaths,
  type ClhSnapshot,
} from "../../lib/hypervisor/clh/index.ts";
import type { VmSpec } from "../../lib/hypervisor/index.ts";
import type { ClhVmRecord as VmState } from "../../lib/persist/index.ts";
import { readRecord, writeDoubleLauncher, type DoubleOptions, type RecordedRequest } from "../helpers/clh-double.ts";
import { loadChSpec } from "./spec.ts";
import { writeVirtiofsdLauncher } from "./virtiofsd-standin.ts";

const root = mkdtempSync(join(tmpdir(), "husk-clh-"));
const spec = loadChSpec();
const started: VmState[] = [];
let runs = 0;

// Settings whose cloud-hypervisor is the test double, with its own request record.
function rig(opts: DoubleOptions = {}) {
  const dir = join(root, `rig${runs++}`);
  const record = join(dir, "requests.jsonl");
  const bin = join(dir, "bin");
  const settings: Settings = {
    ...loadSettings({}, { HUSK_CONFIG: "/dev/null" }),
    clhPath: writeDoubleLauncher(bin, { record, ...opts }),
    virtiofsdPath: writeVirtiofsdLauncher(bin),
  };
  writeFileSync(join(dir, "vmlinux"), "kernel");
  writeFileSync(join(dir, "initrd"), "initrd");
  mkdirSync(join(dir, "shared"));
  const vmSpec = (id: string, over: Partial<VmSpec> = {}): VmSpec => ({
    sandboxId: id,
    vmDir: join(dir, "vm", id),
    sharedDir: join(dir, "shared"),
    cpus: 1,
    memoryMiB: 128,
    assets: { version: "g1", dir, kernel: join(dir, "vmlinux"), initrd: join(dir, "initrd"), cmdline: "console=ttyS0" },
    ...over,
  });
  return { dir, settings, driver: clhDriver(settings), vmSpec, requests: () => readRecord(record) };
}

const track = (s: VmState) => (started.push(s), s);

// Every body the driver sent is checked here as well as in the double.
function expectSpecBodies(requests: RecordedRequest[]): void {
  for (const r of requests) {
    const schema = spec.requestSchema(r.endpoint, r.method);
    if (schema) expect(spec.check(schema, r.body), `${r.method} /${r.endpoint}`).toEqual([]);
    else expect(r.body, `${r.method} /${r.endpoint} takes no body`).toBeUndefined();
  }
}

async function echo(stream: Duplex, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    stream.on("data", (d) => {
      got += d.toString();
      if (got.length >= text.length) resolve(got);
    });
    stream.on("error", reject);
    stream.write(text);
  }).finally(() => stream.destroy()) as Promise<string>;
}

// Processes whose command line mentions `needle` (a VM directory).
function processesMentioning(needle: string): number[] {
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(needle) && isAlive(Number(pid));
      } catch {
        return false;
      }
    })
    .map(Number);
}

afterAll(async () => {
  const driver = clhDriver(loadSettings({}, { HUSK_CONFIG: "/dev/null" }));
  for (const s of started) await driver.stop(s);
  rmSync(root, { recursive: true, force: true });
});

describe("clh driver against the test double", () => {
  test("create, boot, pause, snapshot, restore into a new directory, resume, shut down", async () => {
    const { driver, settings, vmSpec, requests, dir } = rig();
    const a = track(await driver.start(vmSpec("sb-a")));
    const pa = vmPaths(a.dir);
    expect(a).toMatchObject({ driver: "clh", apiSocket: pa.api, vsockSocket: pa.vsock, agentPort: 1024 });
    expect(driver.channel(a)).toEqual({ kind: "hybrid-vsock", path: pa.vsock, port: 1024 });
    expect(a.vmmVersion).toBe("v53.0");
    expect(isAlive(a.vmm?.pid, a.vmm?.startTime) && isAlive(a.virtiofsd?.process.pid)).toBe(true);
    expect(await driver.status(a)).toBe("running");
    expect(requests().map((r) => `${r.method} ${r.endpoint}`).filter((r) => r.startsWith("PUT"))).toEqual([
      "PUT vm.create",
      "PUT vm.boot",
    ]);
    expect(await echo(await driver.dialAgent(a, 2000), "hello agent")).toBe("hello agent");

    await driver.pause(a);
    expect(await driver.status(a)).toBe("paused");
    const snap = await checkpoint(a, join(dir, "snap"));
    expect(snap).toMatchObject({ path: join(dir, "snap"), vmmVersion: "v53.0", sourceVmDir: a.dir });
    expect(Date.parse(snap.createdAt)).toBeGreaterThan(Date.now() - 60_000);
    const { driver: recordedBy, ...described } = snap;
    expect(recordedBy).toBe("clh");
    expect(readSnapshot(snap.path)).toEqual(described);
    expect(await driver.status(a)).toBe("paused");
    await driver.stop(a);
    expect(isAlive(a.vmm?.pid) || isAlive(a.virtiofsd?.process.pid)).toBe(false);

    const b = track(await restore(settings, snap, vmSpec("sb-b")));
    const pb = vmPaths(b.dir);
    expect(await driver.status(b)).toBe("running");
    // The restored VMM runs with the new directory's sockets and files.
    const info = await clhApi(b.apiSocket).info();
    expect(info?.config).toMatchObject({
      vsock: { socket: pb.vsock },
      fs: [{ tag: "husk", socket: pb.virtiofs }],
      serial: { mode: "File", file: pb.serial },
    });
    expect(JSON.stringify(info?.config)).not.toContain(a.dir);
    // ...while the snapshot itself is untouched and can be restored again.
    expect(readFileSync(join(snap.path, "config.json"), "utf8")).toContain(pa.vsock);
    expect(await echo(await driver.dialAgent(b, 2000), "after restore")).toBe("after restore");

    const restoreCall = requests().find((r) => r.endpoint === "vm.restore");
    expect(restoreCall).toMatchObject({ status: 204, body: { source_url: `file://${pb.restore}` } });
    await driver.stop(b);
    expect(isAlive(b.vmm?.pid) || isAlive(b.virtiofsd?.process.pid)).toBe(false);
    expect(existsSync(pb.api) || existsSync(pb.vsock)).toBe(false);
    await driver.stop(b); // again: already gone is fine
    expect(await driver.status(b)).toBe("stopped");

    const all = requests();
    expect(all.filter((r) => r.status >= 300)).toEqual([]);
    expectSpecBodies(all);
    expect(all.map((r) => r.endpoint)).toEqual(
      expect.arrayContaining(["vm.create", "vm.boot", "vm.pause", "vm.snapshot", "vm.restore", "vm.resume", "vm.shutdown", "vmm.shutdown"]),
    );
  });

  test("restore passes memory_restore_mode, and a snapshot restores twice", async () => {
    const { driver, settings, vmSpec, requests, dir } = rig();
    const a = track(await driver.start(vmSpec("m-a")));
    const snap = await checkpoint(a, join(dir, "snap"), { leaveRunning: true });
    expect(await driver.status(a)).toBe("running");
    await driver.stop(a);
    const b = track(await restore(settings, snap, vmSpec("m-b"), { memoryRestoreMode: "OnDemand", prefault: false }));
    const c = track(await restore(settings, snap, vmSpec("m-c")));
    expect(await driver.status(b)).toBe("running");
    expect(await driver.status(c)).toBe("running");
    const bodies = requests().filter((r) => r.endpoint === "vm.restore").map((r) => r.body);
    expect(bodies).toEqual([
      { source_url: `file://${vmPaths(b.dir).restore}`, memory_restore_mode: "OnDemand", prefault: false },
      { source_url: `file://${vmPaths(c.dir).restore}` },
    ]);
    expectSpecBodies(requests());
    await driver.stop(b);
    await driver.stop(c);
  });

  test("a snapshot from another cloud-hypervisor version is refused, naming both", async () => {
    const old = rig({ version: "v52.0" });
    const a = track(await old.driver.start(old.vmSpec("v-a")));
    const snap = await checkpoint(a, join(old.dir, "snap"));
    await old.driver.stop(a);

    const next = rig({ version: "v53.1" });
    const target = next.vmSpec("v-b");
    const err = await restore(next.settings, snap, target).catch((e) => e);
    expect(err).toBeInstanceOf(HuskError);
    expect(err.message).toMatch(/taken with cloud-hypervisor v52\.0, but .* is v53\.1; snapshots restore only on the same version/);
    expect(next.requests().some((r) => r.endpoint === "vm.restore")).toBe(false);
    expect(processesMentioning(target.vmDir)).toEqual([]);
  });

  test("API errors carry the status and the VMM's message", async () => {
    const { driver, vmSpec } = rig();
    const a = track(await driver.start(vmSpec("e-a")));
    await driver.pause(a);
    await expect(driver.pause(a)).rejects.toThrow(/PUT \/vm\.pause failed with HTTP 405 .*: clh-double: VM is Paused, needs Running/);
    await driver.resume(a);
    await expect(driver.resume(a)).rejects.toThrow(/PUT \/vm\.resume failed with HTTP 405/);
    await driver.stop(a);
    await expect(driver.pause(a)).rejects.toThrow(/cloud-hypervisor of the VM in .* is not running/);
  });

  test("a paused guest cannot answer the agent handshake", async () => {
    const { driver, vmSpec } = rig();
    const a = track(await driver.start(vmSpec("p-a")));
    await driver.pause(a);
    await expect(driver.dialAgent(a, 300)).rejects.toThrow(/no answer to CONNECT within 300 ms/);
    await driver.stop(a);
  });

  test("an agent port nobody listens on fails the dial", async () => {
    const { driver, vmSpec } = rig({ ports: [2048] });
    const a = track(await driver.start(vmSpec("n-a")));
    await expect(driver.dialAgent(a, 2000)).rejects.toThrow(/port 1024: connection closed without an answer/);
    await driver.stop(a);
  });

  test("a failed boot surfaces the VMM's answer and leaves no process behind", async () => {
    const { driver, vmSpec, dir } = rig();
    const s = vmSpec("f-a");
    s.assets = { ...s.assets!, kernel: join(dir, "no-such-vmlinux") };
    const err = await driver.start(s).catch((e) => e);
    expect(err.message).toMatch(/PUT \/vm\.boot failed with HTTP 500 .*cannot open kernel .*no-such-vmlinux/);
    expect(processesMentioning(s.vmDir)).toEqual([]);
  });

  test("a VMM that dies at start-up is reported with its output", async () => {
    const { settings, vmSpec, dir } = rig();
    const broken = join(dir, "bin", "broken-ch");
    writeFileSync(broken, "#!/bin/sh\necho 'cannot open /dev/kvm' >&2\nexit 1\n");
    chmodSync(broken, 0o755);
    const s = vmSpec("d-a");
    await expect(clhDriver({ ...settings, clhPath: broken }).start(s)).rejects.toThrow(
      /cloud-hypervisor \(.*broken-ch\) exited during start-up: cannot open \/dev\/kvm/,
    );
    expect(processesMentioning(s.vmDir)).toEqual([]);
  });

  test.each([
    ["clhPath", "cloud-hypervisor not found at '/nonexistent/cloud-hypervisor': install it or set HUSK_CLOUD_HYPERVISOR"],
    ["virtiofsdPath", "virtiofsd /nonexistent/virtiofsd (settings virtiofsd.path / HUSK_VIRTIOFSD) does not exist"],
  ])("a missing binary (%s) is named", async (key, message) => {
    const { settings, vmSpec } = rig();
    const path = key === "clhPath" ? "/nonexistent/cloud-hypervisor" : "/nonexistent/virtiofsd";
    await expect(clhDriver({ ...settings, [key]: path }).start(vmSpec("x"))).rejects.toThrow(message);
  });

  test("bad sandbox input is refused before anything starts", async () => {
    const { driver, vmSpec, dir } = rig();
    await expect(driver.start(vmSpec("../escape"))).rejects.toThrow(/invalid sandbox id/);
    await expect(driver.start(vmSpec("s1", { sharedDir: join(dir, "nope") }))).rejects.toThrow(
      `shared directory ${join(dir, "nope")} of sandbox s1 does not exist`,
    );
    expect(existsSync(vmSpec("s1").vmDir)).toBe(false);
  });

  test("checkpoint refuses a directory in use; restore refuses what is not a snapshot", async () => {
    const { driver, settings, vmSpec, dir } = rig();
    const a = track(await driver.start(vmSpec("c-a")));
    mkdirSync(join(dir, "used"));
    writeFileSync(join(dir, "used", "keep"), "x");
    await expect(checkpoint(a, join(dir, "used"))).rejects.toThrow(/used is not empty/);
    expect(await driver.status(a)).toBe("running");
    await driver.stop(a);
    await expect(checkpoint(a, join(dir, "later"))).rejects.toThrow(/is not running/);
    const fake: ClhSnapshot = { path: join(dir, "used"), createdAt: "", vmmVersion: "v53.0", sourceVmDir: a.dir };
    await expect(restore(settings, fake, vmSpec("c-b"))).rejects.toThrow(/holds no cloud-hypervisor snapshot \(config.json missing\)/);
    expect(() => readSnapshot(join(dir, "used"))).toThrow(/is not a husk snapshot/);
  });
});
