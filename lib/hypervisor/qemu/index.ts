import { closeSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Duplex } from "node:stream";
import type { Settings } from "../../config/index.ts";
import { ErrorCode, HuskError, errorMessage, log } from "../../core/index.ts";
import { AGENT_IN_SHARE, bootableAssets, readManifest, type GuestAssets } from "../../guest/index.ts";
import { QemuVmSchema, type QemuVmRecord as QemuVm } from "../../persist/index.ts";
import { dialUnix } from "../dial.ts";
import { isDirectory, running, sleep, spawnDetached, stopProcess, waitUntil } from "../process.ts";
import { findExecutable } from "../select.ts";
import type { Hypervisor, VmSpec, VmStatus } from "../types.ts";
import { startVirtiofsd, stopVirtiofsd, virtiofsdCommand } from "../virtiofsd.ts";
import { chooseAccel } from "./accel.ts";
import { AGENT_CHARDEV, qemuArgs, vmFiles, type Accel } from "./cmdline.ts";
import { QEMU_FEATURES } from "./features.ts";
import { qmp, qmpPortOpen, qmpStatus } from "./qmp.ts";
import { RAM_FILE, guestRam } from "./ram.ts";
import { checkpoint, load, readSnapshot, snapshotSupport } from "./snapshot.ts";

export { chooseAccel, probeKvm, type AccelChoice } from "./accel.ts";
export { qmp, qmpStatus } from "./qmp.ts";
export { baseArgs, qemuArgs, vmFiles, kernelCmdline, hostTscKhz, type Accel } from "./cmdline.ts";
export { qemuReport, type QemuReport } from "./check.ts";

export interface QemuOptions {
  accel?: "auto" | Accel; // default: HUSK_QEMU_ACCEL, else auto (KVM only after a probe boots)
  guestMode?: "agent" | "echo" | "shell"; // what the guest's init runs on the agent port
  extraCmdline?: string;
}

const QEMU_START_TIMEOUT_MS = 10_000;

// The agent binary is served from the share when the assets keep it out of
// the initramfs: the assets' own file, bound read-only over an empty
// placeholder inside virtiofsd's namespace (startVirtiofsd), so no sandbox
// copies its ~100 MB and no guest can change what other guests run.
function agentBind(assets: GuestAssets, sharedDir: string): { source: string; target: string } | undefined {
  const m = readManifest(assets.dir);
  if (m.agent !== "share" || !m.files.agent) return undefined;
  const target = join(sharedDir, AGENT_IN_SHARE);
  mkdirSync(dirname(target), { recursive: true });
  rmSync(target, { force: true });
  writeFileSync(target, "", { mode: 0o555 });
  return { source: join(assets.dir, m.files.agent.path), target };
}

// Booting: running. Restoring: waiting for the snapshot's state.
const qmpReady = (socket: string, status: string) => async () =>
  existsSync(socket) && (await qmpStatus(socket, 2000).then((s) => s === status, () => false));

// The size a restore must repeat, as the running QEMU has it.
async function vmSize(vm: QemuVm): Promise<{ cpus: number; memoryMiB: number }> {
  const [cpus, mem] = await qmp(vm.qmpSocket, [{ execute: "query-cpus-fast" }, { execute: "query-memory-size-summary" }]);
  return { cpus: (cpus as unknown[]).length, memoryMiB: (mem as { "base-memory": number })["base-memory"] / (1 << 20) };
}

const PAUSED = new Set(["paused", "suspended", "prelaunch", "inmigrate", "finish-migrate", "postmigrate"]);

export function qemuDriver(settings: Settings, opts: QemuOptions = {}): Hypervisor<QemuVm> {
  const accelWanted = opts.accel ?? ((process.env.HUSK_QEMU_ACCEL as "auto" | Accel | undefined) || "auto");
  if (!["auto", "kvm", "tcg"].includes(accelWanted)) throw new HuskError(`HUSK_QEMU_ACCEL must be auto, kvm or tcg, not ${accelWanted}`);
  const qemuBin = () => {
    const q = findExecutable(settings.qemuPath);
    if (!q) throw new HuskError(`QEMU not found: ${settings.qemuPath} (install qemu-system-x86, or set HUSK_QEMU / qemu.path)`);
    return q;
  };

  // Fills `vm` in as processes start, so that stop() can undo a failed start.
  // `ramFrom`: a template's RAM file, copied into the new guest RAM.
  async function bringUp(vm: QemuVm, spec: VmSpec, assets: GuestAssets, qemu: string, incoming = false, ramFrom?: string): Promise<void> {
    const f = vmFiles(spec.vmDir);
    const agent = agentBind(assets, spec.sharedDir);
    vm.agentInShare = agent?.target;
    vm.virtiofsd = await startVirtiofsd({
      command: virtiofsdCommand(assets, settings.virtiofsdPath), socket: f.vfs, sharedDir: spec.sharedDir, logPath: f.virtiofsdLog,
      bindFiles: agent && [agent],
    });
    const mode = opts.guestMode && opts.guestMode !== "agent" ? `husk.mode=${opts.guestMode}` : "";
    const args = qemuArgs({
      accel: vm.accel, cpus: spec.cpus, memoryMiB: spec.memoryMiB, assets, vmDir: spec.vmDir,
      name: `husk-${spec.sandboxId}`, share: true, extraCmdline: [mode, opts.extraCmdline].filter(Boolean).join(" "),
      nics: spec.network?.nics, incoming,
    });
    // In the sandbox's netns QEMU opens its taps by name; nsenter execs it (same pid).
    const [cmd, ...pre] = spec.network ? ["nsenter", `--net=${spec.network.netns}`, qemu] : [qemu];
    const ram = guestRam(spec.memoryMiB, ramFrom);
    try {
      vm.vmm = spawnDetached(cmd!, [...pre, ...args], f.qemuLog, { fds: [ram] });
    } finally {
      closeSync(ram); // QEMU holds its own
    }
    await waitUntil(qmpReady(f.qmp, incoming ? "inmigrate" : "running"), vm.vmm, "QEMU", f.qemuLog, QEMU_START_TIMEOUT_MS);
  }

  // A failed start stops what it started; its error names the sandbox.
  async function launch(spec: VmSpec, vm: QemuVm, up: () => Promise<void>): Promise<QemuVm> {
    try {
      await up();
    } catch (e) {
      await driver.stop(vm).catch(() => {});
      throw e instanceof HuskError ? e : new HuskError(`cannot start VM for sandbox ${spec.sandboxId}: ${errorMessage(e)}`);
    }
    return vm;
  }

  const newVm = (spec: VmSpec, accel: Accel, accelReason: string, assetsVersion: string): QemuVm => {
    mkdirSync(spec.vmDir, { recursive: true });
    const f = vmFiles(spec.vmDir);
    for (const s of [f.qmp, f.agent, f.vfs]) rmSync(s, { force: true });
    return { driver: "qemu", dir: spec.vmDir, qmpSocket: f.qmp, agentSocket: f.agent, accel, accelReason, assetsVersion };
  };

  const driver: Hypervisor<QemuVm> = {
    name: "qemu",
    features: QEMU_FEATURES,
    schema: QemuVmSchema,

    async start(spec) {
      const qemu = qemuBin();
      if (!isDirectory(spec.sharedDir)) throw new HuskError(`shared directory ${spec.sharedDir} of sandbox ${spec.sandboxId} does not exist`);
      const assets = spec.assets ?? bootableAssets(settings.guestDir, settings.guestVersion);
      const choice = await chooseAccel(qemu, assets, settings.root, accelWanted);
      log.debug(`qemu: ${choice.accel} (${choice.reason})`);
      const vm = newVm(spec, choice.accel, choice.reason, assets.version);
      return launch(spec, vm, () => bringUp(vm, spec, assets, qemu));
    },

    // The same command line as the saved VM (assets, accel, size), a fresh
    // virtiofsd over the rebuilt shared directory, then the saved state.
    async checkpoint(vm, dest, opts) {
      const cfg = await vmSize(vm);
      return checkpoint(vm, dest, { assetsVersion: vm.assetsVersion, ...cfg }, opts);
    },

    snapshotSupport: (cacheDir) => snapshotSupport(qemuBin(), cacheDir),

    async restore(record, spec) {
      const snap = readSnapshot(record.path);
      const qemu = qemuBin();
      if (!isDirectory(spec.sharedDir)) throw new HuskError(`shared directory ${spec.sharedDir} of sandbox ${spec.sandboxId} does not exist`);
      const assets = bootableAssets(settings.guestDir, snap.assetsVersion);
      const vm = newVm(spec, snap.accel, `as saved in ${snap.path}`, assets.version);
      const same = { ...spec, cpus: snap.cpus, memoryMiB: snap.memoryMiB };
      return launch(spec, vm, async () => {
        await bringUp(vm, same, assets, qemu, true, snap.ramFile ? join(snap.path, RAM_FILE) : undefined);
        await load(vm, snap);
      });
    },

    channel: (vm) => ({ kind: "virtio-serial", path: vm.agentSocket }),

    // One byte stream: QEMU's chardev accepts one connection at a time. The
    // host end connects first, so the guest's port never sees a hang-up while
    // it opens (what is sent waits in the socket), then we wait for the guest
    // to open its port: a VM whose agent never comes up fails by name.
    async dialAgent(vm, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      const sock = (await dialUnix(vm.agentSocket, timeoutMs)) as Duplex;
      try {
        while (!(await qmpPortOpen(vm.qmpSocket, AGENT_CHARDEV, 2000).catch(() => false))) {
          if (Date.now() > deadline)
            throw new HuskError(`the agent in sandbox VM ${vm.dir} did not open its port within ${timeoutMs} ms`, { code: ErrorCode.DeadlineExceeded });
          if (!running(vm.vmm)) throw new HuskError(`the VM in ${vm.dir} has stopped (see console.log there)`, { code: ErrorCode.Unavailable });
          await sleep(50);
        }
      } catch (e) {
        sock.destroy();
        throw e;
      }
      return sock;
    },

    mainProcess: (vm) => vm.vmm,
    vitals: (vm) => [vm.vmm, vm.virtiofsd?.process].filter((p) => p !== undefined),

    async pause(vm) {
      await qmp(vm.qmpSocket, [{ execute: "stop" }]);
    },

    async resume(vm) {
      await qmp(vm.qmpSocket, [{ execute: "cont" }]);
    },

    async status(vm): Promise<VmStatus> {
      if (!running(vm.vmm)) return "stopped";
      const s = await qmpStatus(vm.qmpSocket, 3000).catch(() => "unreachable");
      if (s === "running") return "running";
      if (PAUSED.has(s)) return "paused";
      if (s === "unreachable")
        throw new HuskError(`QEMU (pid ${vm.vmm!.pid}) is alive but its QMP socket ${vm.qmpSocket} does not answer`, { code: ErrorCode.Unavailable });
      return "stopped"; // shutdown, guest-panicked, internal-error, ...
    },

    async stop(vm) {
      await stopProcess(vm.vmm, () => qmp(vm.qmpSocket, [{ execute: "quit" }], 2000));
      await stopVirtiofsd(vm.virtiofsd);
      const f = vmFiles(vm.dir);
      for (const p of [f.qmp, f.agent, f.vfs, `${f.vfs}.pid`]) rmSync(p, { force: true });
      // Only where agentBind puts it: a document is never trusted to name
      // what a recursive removal takes.
      const placed = vm.virtiofsd && join(vm.virtiofsd.sharedDir, AGENT_IN_SHARE);
      if (vm.agentInShare && vm.agentInShare === placed) {
        rmSync(dirname(placed), { recursive: true, force: true });
      }
    },
  };
  return driver;
}
