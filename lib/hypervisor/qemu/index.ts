import { spawn } from "node:child_process";
import { closeSync, constants, copyFileSync, existsSync, linkSync, mkdirSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Duplex } from "node:stream";
import type { Settings } from "../../config/index.ts";
import { HuskError, errorMessage, isAlive, log, processStartTime, terminate } from "../../core/index.ts";
import { AGENT_IN_SHARE, readManifest, resolveGuestAssets } from "../../guest/index.ts";
import { dialUnix } from "../local/index.ts";
import { findExecutable } from "../select.ts";
import type { GuestAssets, Hypervisor, VmSpec, VmState, VmStatus } from "../types.ts";
import { chooseAccel, type AccelChoice } from "./accel.ts";
import { AGENT_CHARDEV, qemuArgs, vmFiles, type Accel } from "./cmdline.ts";
import { qmp, qmpPortOpen, qmpStatus } from "./qmp.ts";
import { spawnVirtiofsd, virtiofsdCommand } from "./virtiofsd.ts";

export { chooseAccel, probeKvm, type AccelChoice } from "./accel.ts";
export { qmp, qmpStatus } from "./qmp.ts";
export { baseArgs, qemuArgs, vmFiles, kernelCmdline, hostTscKhz, type Accel } from "./cmdline.ts";
export { virtiofsdCommand } from "./virtiofsd.ts";

export interface QemuOptions {
  accel?: "auto" | Accel; // default: HUSK_QEMU_ACCEL, else auto (KVM only after a probe boots)
  guestMode?: "agent" | "echo" | "shell"; // what the guest's init runs on the agent port
  extraCmdline?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(path: string, lines = 8): string {
  try {
    return readFileSync(path, "utf8").trim().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, alive: () => boolean, timeoutMs: number, why: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    if (!alive()) throw new HuskError(`${what}: the process exited: ${why() || "no output"}`);
    await sleep(20);
  }
  throw new HuskError(`${what}: not ready within ${timeoutMs} ms: ${why()}`);
}

// The agent binary is served from the share when the assets keep it out of the
// initramfs: a hard link when the share is on the same filesystem, else a copy.
function placeAgent(assets: GuestAssets, sharedDir: string): string | undefined {
  const m = readManifest(assets.dir);
  if (m.agent !== "share" || !m.files.agent) return undefined;
  const src = join(assets.dir, m.files.agent.path);
  const dest = join(sharedDir, AGENT_IN_SHARE);
  mkdirSync(dirname(dest), { recursive: true });
  rmSync(dest, { force: true });
  try {
    linkSync(src, dest);
  } catch {
    log.debug(`agent binary copied into ${dest} (cannot hard-link across filesystems)`);
    copyFileSync(src, dest, constants.COPYFILE_FICLONE); // a reflink where the filesystem can
  }
  return dest;
}

const startTime = (s: VmState, key: "pidStartTime" | "virtiofsdStartTime"): number | undefined => {
  const v = key === "pidStartTime" ? s.pidStartTime : s.extra?.[key];
  return typeof v === "number" ? v : undefined;
};

function spawnQemu(qemu: string, args: string[], logPath: string): number {
  const log = openSync(logPath, "a");
  const child = spawn(qemu, args, { detached: true, stdio: ["ignore", log, log] });
  closeSync(log);
  child.on("exit", () => {}); // reaped while we run, so no zombie outlives stop()
  child.unref();
  if (!child.pid) throw new HuskError(`cannot start ${qemu}`);
  return child.pid;
}

export function qemuDriver(settings: Settings, opts: QemuOptions = {}): Hypervisor {
  const accelWanted = opts.accel ?? ((process.env.HUSK_QEMU_ACCEL as "auto" | Accel | undefined) || "auto");
  if (!["auto", "kvm", "tcg"].includes(accelWanted)) throw new HuskError(`HUSK_QEMU_ACCEL must be auto, kvm or tcg, not ${accelWanted}`);
  const qemuBin = () => {
    const q = findExecutable(settings.qemuPath);
    if (!q) throw new HuskError(`QEMU not found: ${settings.qemuPath} (install qemu-system-x86, or set HUSK_QEMU / qemu.path)`);
    return q;
  };

  const driver: Hypervisor = {
    name: "qemu",

    async start(spec: VmSpec): Promise<VmState> {
      const qemu = qemuBin();
      if (!existsSync(spec.sharedDir)) throw new HuskError(`shared directory ${spec.sharedDir} of sandbox ${spec.sandboxId} does not exist`);
      const assets = spec.assets ?? resolveGuestAssets(settings.guestDir, settings.guestVersion);
      mkdirSync(spec.vmDir, { recursive: true });
      const f = vmFiles(spec.vmDir);
      for (const s of [f.qmp, f.agent, f.vfs]) rmSync(s, { force: true });
      const choice: AccelChoice = await chooseAccel(qemu, assets, settings.root, accelWanted);
      log.debug(`qemu: ${choice.accel} (${choice.reason})`);
      const state: VmState = {
        driver: "qemu",
        vmDir: spec.vmDir,
        apiSocket: f.qmp,
        agent: { kind: "virtio-serial", path: f.agent },
        assetsVersion: assets.version,
        extra: { accel: choice.accel, accelReason: choice.reason, sharedDir: spec.sharedDir },
      };
      try {
        const vfsCmd = virtiofsdCommand(assets, settings.virtiofsdPath);
        state.extra!.agentInShare = placeAgent(assets, spec.sharedDir);
        const vpid = spawnVirtiofsd(vfsCmd, f.vfs, spec.sharedDir, f.virtiofsdLog);
        state.virtiofsdPid = vpid;
        state.extra!.virtiofsdStartTime = processStartTime(vpid);
        await waitFor("virtiofsd", () => existsSync(f.vfs), () => isAlive(vpid), 5000, () => tail(f.virtiofsdLog));

        const mode = opts.guestMode && opts.guestMode !== "agent" ? `husk.mode=${opts.guestMode}` : "";
        const args = qemuArgs({
          accel: choice.accel, cpus: spec.cpus, memoryMiB: spec.memoryMiB, assets, vmDir: spec.vmDir,
          name: `husk-${spec.sandboxId}`, share: true, extraCmdline: [mode, opts.extraCmdline].filter(Boolean).join(" "),
        });
        const pid = spawnQemu(qemu, args, f.qemuLog);
        state.pid = pid;
        state.pidStartTime = processStartTime(pid);
        await waitFor("QEMU", async () => existsSync(f.qmp) && (await qmpStatus(f.qmp, 2000).then((s) => s === "running", () => false)),
          () => isAlive(pid), 10_000, () => tail(f.qemuLog));
      } catch (e) {
        await driver.stop(state).catch(() => {});
        throw e instanceof HuskError ? e : new HuskError(`cannot start VM for sandbox ${spec.sandboxId}: ${errorMessage(e)}`);
      }
      return state;
    },

    // One byte stream: QEMU's chardev accepts one connection at a time. The
    // host end connects first, so the guest's port never sees a hang-up while
    // it opens (what is sent waits in the socket), then we wait for the guest
    // to open its port: a VM whose agent never comes up fails by name.
    async dialAgent(state, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      const sock = (await dialUnix(state.agent.path, timeoutMs)) as Duplex;
      try {
        while (!(await qmpPortOpen(state.apiSocket!, AGENT_CHARDEV, 2000).catch(() => false))) {
          if (Date.now() > deadline) throw new HuskError(`the agent in sandbox VM ${state.vmDir} did not open its port within ${timeoutMs} ms`);
          if (!isAlive(state.pid, state.pidStartTime)) throw new HuskError(`the VM in ${state.vmDir} has stopped (see console.log there)`);
          await Bun.sleep(50);
        }
      } catch (e) {
        sock.destroy();
        throw e;
      }
      return sock;
    },

    async pause(state) {
      await qmp(needQmp(state), [{ execute: "stop" }]);
    },

    async resume(state) {
      await qmp(needQmp(state), [{ execute: "cont" }]);
    },

    async status(state): Promise<VmStatus> {
      if (!isAlive(state.pid, startTime(state, "pidStartTime"))) return "stopped";
      const s = await qmpStatus(needQmp(state), 3000).catch(() => "unreachable");
      if (s === "running") return "running";
      if (s === "paused" || s === "suspended" || s === "prelaunch" || s === "inmigrate" || s === "finish-migrate" || s === "postmigrate") return "paused";
      if (s === "unreachable") throw new HuskError(`QEMU (pid ${state.pid}) is alive but its QMP socket ${state.apiSocket} does not answer`);
      return "stopped"; // shutdown, guest-panicked, internal-error, ...
    },

    async stop(state) {
      const pidStart = startTime(state, "pidStartTime");
      if (state.pid && isAlive(state.pid, pidStart)) {
        if (state.apiSocket) await qmp(state.apiSocket, [{ execute: "quit" }], 2000).catch(() => {});
        await terminate(state.pid, pidStart, 3000);
      }
      // virtiofsd leaves once QEMU hangs up; the signal is the fallback.
      if (state.virtiofsdPid) await terminate(state.virtiofsdPid, startTime(state, "virtiofsdStartTime"), 1000);
      const f = vmFiles(state.vmDir);
      for (const p of [f.qmp, f.agent, f.vfs, `${f.vfs}.pid`]) rmSync(p, { force: true });
      const placed = state.extra?.agentInShare;
      if (typeof placed === "string") rmSync(dirname(placed), { recursive: true, force: true });
    },
  };
  return driver;
}

function needQmp(state: VmState): string {
  if (!state.apiSocket) throw new HuskError(`VM in ${state.vmDir} has no QMP socket recorded`);
  return state.apiSocket;
}
export { qemuReport, type QemuReport } from "./check.ts";
