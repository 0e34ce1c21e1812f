import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { loadSettings, type Settings } from "../../lib/config/index.ts";
import { HuskError, isAlive } from "../../lib/core/index.ts";
import { AGENT_IN_SHARE, readManifest } from "../../lib/guest/index.ts";
import { qemuDriver } from "../../lib/hypervisor/qemu/index.ts";
import type { Hypervisor, VmSpec } from "../../lib/hypervisor/index.ts";
import type { QemuVmRecord as VmState } from "../../lib/persist/index.ts";
import { connectAgent } from "../../lib/protocol/index.ts";
import pkg from "../../package.json" with { type: "json" };
import { TEST_GUEST_DIR, buildAssets, pruneOldVersions, vmSkipReason } from "./assets.ts";

const skip = vmSkipReason();
if (skip) console.log(`test/qemu: skipped: ${skip}`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A line-oriented view of the guest shell on the agent port.
class GuestShell {
  private out = "";
  constructor(private readonly s: Duplex) {
    s.on("data", (b: Buffer) => (this.out += b.toString("utf8")));
  }
  // Runs a command; resolves with what it printed before the end marker.
  async run(cmd: string, timeoutMs = 20_000): Promise<string> {
    const mark = `__done_${Math.random().toString(36).slice(2)}__`;
    const from = this.out.length;
    this.s.write(`${cmd}; echo ${mark}\n`);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const at = this.out.indexOf(`${mark}\n`, from);
      if (at >= 0) return this.out.slice(from, at).trim();
      await sleep(10);
    }
    throw new Error(`guest did not answer ${JSON.stringify(cmd)} within ${timeoutMs} ms; got ${JSON.stringify(this.out.slice(from))}`);
  }
  close() {
    this.s.destroy();
  }
}

describe.skipIf(!!skip)("qemu driver (TCG)", () => {
  let settings: Settings;
  let work: string;
  let driver: Hypervisor<VmState>;
  let state: VmState | undefined;
  let shell: GuestShell;
  let spec: VmSpec;

  beforeAll(async () => {
    const r = buildAssets();
    if (r.status !== 0) throw new Error(`husk guest build failed: ${r.stderr}`);
    const version = /guest assets (\S+)/.exec(r.stdout)![1]!;
    pruneOldVersions(version);
    work = mkdtempSync(join(tmpdir(), "husk-qemu-"));
    settings = loadSettings({ guestDir: TEST_GUEST_DIR, guestVersion: version, root: join(work, "root") }, {});
    driver = qemuDriver(settings, { guestMode: "shell", accel: "tcg" });
    spec = { sandboxId: "vm1", vmDir: join(work, "vm1"), sharedDir: join(work, "shared"), cpus: 1, memoryMiB: 256 };
    await import("node:fs").then((fs) => fs.mkdirSync(spec.sharedDir, { recursive: true }));
    state = await driver.start(spec);
    // dialAgent waits for the guest to open its port: that is the whole boot.
    shell = new GuestShell(await driver.dialAgent(state, 120_000));
  }, 300_000);

  afterAll(async () => {
    shell?.close();
    if (state) await driver.stop(state);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test("the guest's init runs and a byte stream over the virtio-serial port reaches it", async () => {
    expect(await shell.run("echo $((6 * 7))", 60_000)).toBe("42");
    expect(await shell.run("cat /proc/1/cmdline | tr '\\0' ' '")).toContain("init");
    expect(await shell.run("cat /sys/fs/cgroup/cgroup.controllers")).toMatch(/memory/);
    const start = readFileSync(join(spec.vmDir, "console.log"), "utf8");
    expect(start).toContain("husk-init: ready mode=shell");
    expect(state!.assetsVersion).toBe(settings.guestVersion); // a running sandbox keeps the assets it booted
  }, 180_000);

  test("the virtio-fs share is visible both ways, with the agent binary in it", async () => {
    const token = `host-${Date.now()}`;
    writeFileSync(join(spec.sharedDir, "from-host.txt"), token);
    expect(await shell.run("cat /run/husk/shared/from-host.txt")).toBe(token);
    await shell.run("echo guest-wrote > /run/husk/shared/from-guest.txt");
    expect(readFileSync(join(spec.sharedDir, "from-guest.txt"), "utf8")).toBe("guest-wrote\n");
    expect(await shell.run(`/run/husk/shared/${AGENT_IN_SHARE} --version | head -1`, 60_000)).toMatch(/^husk version \d/);
    expect(await shell.run("crun --version | head -1")).toMatch(/^crun version 1\.\d+/); // runs the containers
  });

  test("the guest reads the assets' own agent binary, read-only, and the host share holds no copy of it", async () => {
    const m = readManifest(join(TEST_GUEST_DIR, settings.guestVersion!));
    const assetsAgent = join(TEST_GUEST_DIR, settings.guestVersion!, m.files.agent!.path);
    const size = statSync(assetsAgent).size;
    expect(statSync(join(spec.sharedDir, AGENT_IN_SHARE)).size).toBe(0); // a placeholder, not 100 MB
    const inGuest = `/run/husk/shared/${AGENT_IN_SHARE}`;
    expect(await shell.run(`wc -c < ${inGuest}`)).toBe(String(size));
    expect(await shell.run(`(echo x >> ${inGuest}) 2>/dev/null; echo rc=$?`)).toMatch(/^rc=[1-9]/);
    expect(await shell.run(`(rm -f ${inGuest}) 2>/dev/null; echo rc=$?`)).toMatch(/^rc=[1-9]/);
    expect(statSync(assetsAgent).size).toBe(size);
  });

  test("pause stops the guest, resume lets it go on; status follows", async () => {
    expect(await driver.status(state!)).toBe("running");
    await driver.pause(state!);
    expect(await driver.status(state!)).toBe("paused");
    const pending = shell.run("echo after-resume", 60_000);
    let answered = false;
    pending.then(() => (answered = true), () => {});
    await sleep(1000);
    expect(answered).toBe(false); // a paused guest runs nothing
    await driver.resume(state!);
    expect(await driver.status(state!)).toBe("running");
    expect(await pending).toBe("after-resume");
  });

  test("stop leaves no QEMU, virtiofsd, socket or agent link behind, and is idempotent", async () => {
    const s = state!;
    shell.close();
    expect(isAlive(s.vmm?.pid, s.vmm?.startTime)).toBe(true);
    expect(isAlive(s.virtiofsd?.process.pid)).toBe(true);
    await driver.stop(s);
    expect(isAlive(s.vmm?.pid, s.vmm?.startTime)).toBe(false);
    expect(isAlive(s.virtiofsd?.process.pid)).toBe(false);
    for (const f of ["qmp.sock", "agent.sock", "vfs.sock"]) expect(existsSync(join(s.dir, f))).toBe(false);
    expect(existsSync(join(spec.sharedDir, AGENT_IN_SHARE))).toBe(false);
    expect(existsSync(join(spec.sharedDir, "from-guest.txt"))).toBe(true); // the share's own content stays
    await driver.stop(s); // again: nothing left to do, no error
    expect(await driver.status(s)).toBe("stopped");
    state = undefined;
  });

  test("stop cleans up after a QEMU that was killed from outside", async () => {
    const s = await driver.start({ ...spec, sandboxId: "vm2", vmDir: join(work, "vm2") });
    try {
      process.kill(s.vmm!.pid, "SIGKILL");
      for (let i = 0; i < 100 && isAlive(s.vmm?.pid, s.vmm?.startTime); i++) await sleep(20);
      expect(await driver.status(s)).toBe("stopped");
    } finally {
      await driver.stop(s);
    }
    expect(isAlive(s.virtiofsd?.process.pid)).toBe(false);
    for (const f of ["qmp.sock", "agent.sock", "vfs.sock"]) expect(existsSync(join(s.dir, f))).toBe(false);
  });

  test("a missing shared directory fails with its name and starts nothing", async () => {
    const bad = { ...spec, sandboxId: "vm3", vmDir: join(work, "vm3"), sharedDir: join(work, "no-such-dir") };
    await expect(driver.start(bad)).rejects.toThrow(/shared directory .*no-such-dir of sandbox vm3 does not exist/);
    expect(existsSync(join(bad.vmDir, "qmp.sock"))).toBe(false);
  });

  test("an unknown guest asset version is refused by name", async () => {
    const d = qemuDriver({ ...settings, guestVersion: "no-such-version" }, { accel: "tcg" });
    const err = await d.start({ ...spec, sandboxId: "vm4", vmDir: join(work, "vm4") }).catch((e) => e);
    expect(err).toBeInstanceOf(HuskError);
    expect(err.message).toContain("guest asset version no-such-version not found");
  });

  test("the guest's init starts husk agent, which handshakes over the virtio-serial stream", async () => {
    const d = qemuDriver(settings, { accel: "tcg" });
    const s = await d.start({ ...spec, sandboxId: "vm5", vmDir: join(work, "vm5") });
    try {
      // dialAgent waits for the guest agent to open its port: give it the boot.
      const client = await connectAgent(() => d.dialAgent(s, 90_000), { sandboxId: "vm5", timeoutMs: 90_000 });
      try {
        expect(client.negotiated.agentVersion).toBe(pkg.version);
        expect(client.negotiated.capabilities).toContain("containers");
        expect((await client.health()).serving).toBe(true);
      } finally {
        client.close();
      }
      expect(readFileSync(join(s.dir, "console.log"), "utf8")).toContain("husk-init: ready mode=agent port=/dev/vport");
    } finally {
      await d.stop(s);
    }
    expect(isAlive(s.vmm?.pid, s.vmm?.startTime)).toBe(false);
  }, 180_000);
});
