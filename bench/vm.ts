import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSettings } from "../lib/config/index.ts";
import { GUEST_READY_MARK, listGuestVersions, resolveGuestAssets, writeCpio } from "../lib/guest/index.ts";
import { findExecutable } from "../lib/hypervisor/index.ts";
import { baseArgs, kernelCmdline, qemuDriver } from "../lib/hypervisor/qemu/index.ts";
import type { GuestAssets, VmSpec } from "../lib/hypervisor/index.ts";

// Micro-VM boot figures under QEMU (TCG unless HUSK_QEMU_ACCEL=kvm):
//  - kernel to init with a near-empty initramfs (busybox + a 2-line init),
//  - kernel to our init with the real initramfs (husk.mode=probe, before modules),
//  - driver start() to a shell answering on the agent port (virtiofsd, modules, share),
//  - the agent binary's first run served over virtio-fs,
//  - driver start() to a handshaken `husk agent`, when this build has one.
// Uses the newest assets in HUSK_GUEST_DIR (default: the tests' /var/tmp/husk-test-guest).

const RUNS = Number(process.env.HUSK_BENCH_VM_RUNS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) => `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}, n=${xs.length})`;
const accel = process.env.HUSK_QEMU_ACCEL === "kvm" ? "kvm" : "tcg";

// ms from spawning QEMU until `mark` appears on its serial console.
function bootToMark(qemu: string, assets: GuestAssets, initrd: string, extra: string, mark: string): Promise<number> {
  const args = [...baseArgs(accel, 1, 256, false), "-kernel", assets.kernel, "-initrd", initrd, "-append", kernelCmdline(assets, extra), "-serial", "stdio"];
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(qemu, args, { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    const timer = setTimeout(() => (child.kill("SIGKILL"), reject(new Error(`no ${mark} within 60 s`))), 60_000);
    child.stdout.on("data", (d) => {
      out += d;
      if (out.includes(mark)) {
        clearTimeout(timer);
        resolve(performance.now() - t0);
        child.kill("SIGKILL");
      }
    });
  });
}

function tinyInitrd(dir: string): string {
  const busybox = findExecutable("busybox");
  if (!busybox) throw new Error("busybox-static is needed for the empty-initramfs figure");
  const init = "#!/bin/busybox sh\n/bin/busybox echo tiny-init-reached >/dev/console\n/bin/busybox poweroff -f\n";
  const cpio = writeCpio([
    { kind: "dir", path: "bin" }, { kind: "dir", path: "dev" },
    { kind: "file", path: "bin/busybox", data: readFileSync(busybox), mode: 0o755 },
    { kind: "file", path: "init", data: new TextEncoder().encode(init), mode: 0o755 },
  ]);
  const path = join(dir, "tiny.cpio");
  writeFileSync(path, cpio);
  return path;
}

async function shellReady(spec: VmSpec, guestDir: string, work: string): Promise<{ ready: number; agentRun: number }> {
  const settings = loadSettings({ guestDir, root: join(work, "root") }, {});
  const d = qemuDriver(settings, { guestMode: "shell", accel });
  const t0 = performance.now();
  const st = await d.start(spec);
  const s = await d.dialAgent(st, 60_000);
  let out = "";
  s.on("data", (b: Buffer) => (out += b));
  const waitFor = async (m: string) => {
    while (!out.includes(m)) await new Promise((r) => setTimeout(r, 2));
  };
  s.write("echo ready-$((40+2))\n");
  await waitFor("ready-42");
  const ready = performance.now() - t0;
  s.write("/run/husk/shared/.husk/agent --version >/dev/null; echo agent-ran\n");
  await waitFor("agent-ran");
  const agentRun = performance.now() - t0 - ready;
  s.destroy();
  await d.stop(st);
  return { ready, agentRun };
}

// The console lines init and the agent stamp at each step of the boot
// (lib/guest/init.ts, lib/agent/run.ts), in order.
const STEPS: [string, string][] = [
  ["husk-init: at \\S+ start", "QEMU start + kernel to init"],
  ["husk-init: at \\S+ mounted", "init: proc, sys, dev, cgroup mounts"],
  ["husk-init: at \\S+ modules", "init: kernel modules"],
  ["husk-init: at \\S+ share-and-port", "init: virtio-fs mount, agent port"],
  ["husk-agent: at \\S+ serving", "agent: exec to serving (Bun start-up, modules, engine)"],
];

// When each step's line shows on the console, seen from the host (ms since
// start() was called), polled every 2 ms while the boot runs.
function watchConsole(file: string, t0: number): { seen: (number | undefined)[]; stop: () => void } {
  const seen: (number | undefined)[] = STEPS.map(() => undefined);
  const timer = setInterval(() => {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      return;
    }
    STEPS.forEach(([re], i) => seen[i] === undefined && new RegExp(re).test(text) && (seen[i] = performance.now() - t0));
  }, 2);
  return { seen, stop: () => clearInterval(timer) };
}

const breakdown: { step: string; ms: number[] }[] = [...STEPS.map(([, step]) => ({ step, ms: [] as number[] })), { step: "agent serving to handshake done (host)", ms: [] }];

async function agentReady(spec: VmSpec, guestDir: string, work: string, agentBin: string): Promise<number | string> {
  if (spawnSync(agentBin, ["agent", "--help"], { encoding: "utf8" }).status !== 0) return "n/a: this build has no `husk agent`";
  const { connectAgent } = await import("../lib/protocol/index.ts");
  const settings = loadSettings({ guestDir, root: join(work, "root") }, {});
  const d = qemuDriver(settings, { accel });
  const t0 = performance.now();
  const watch = watchConsole(join(spec.vmDir, "console.log"), t0);
  const st = await d.start(spec);
  try {
    const client = await connectAgent(() => d.dialAgent(st, 60_000), { sandboxId: spec.sandboxId, timeoutMs: 60_000 });
    const t = performance.now() - t0;
    client.close();
    await Bun.sleep(10);
    watch.stop();
    const at = [...watch.seen, t];
    if (at.every((x) => x !== undefined)) at.forEach((x, i) => breakdown[i]!.ms.push(x! - (i ? at[i - 1]! : 0)));
    return t;
  } catch (e) {
    return `failed: ${(e as Error).message}; console: ${readFileSync(join(spec.vmDir, "console.log"), "utf8").trim().split("\n").slice(-3).join(" | ")}`;
  } finally {
    watch.stop();
    await d.stop(st);
  }
}

// The user's view: `husk create` + `start` until the container has printed
// its first line, and what an idle sandbox costs the host in memory.
// `extra`: the environment of a variant (another QEMU, templates on or off);
// `warmUp`: one create first that is not counted (it builds the template).
async function createToRunning(guestDir: string, version: string, work: string, extra: Record<string, string> = {}, warmUp = false): Promise<{ times: number[]; rss: string }> {
  const husk = join(import.meta.dirname, "..", "dist", "husk");
  const { makeBusyboxBundle } = await import("../test/helpers/bundle.ts");
  const bundle = makeBusyboxBundle(mkdtempSync(join(work, "cli-bundle-")), { args: ["sh", "-c", "echo running; while true; do sleep 1; done"] });
  const env = { ...process.env, HUSK_CONFIG: "/dev/null", HUSK_HYPERVISOR: "qemu", HUSK_GUEST_DIR: guestDir, HUSK_GUEST_VERSION: version, ...extra };
  const root = mkdtempSync(join(work, "cli-root-"));
  const cmd = (...a: string[]) => spawnSync(husk, ["--root", root, ...a], { env, encoding: "utf8" });
  const times: number[] = [];
  let rss = "n/a";
  for (let i = warmUp ? -1 : 0; i < RUNS; i++) {
    const out = join(work, `cli-out-${i}`);
    writeFileSync(out, "");
    const t0 = performance.now();
    const fd = openSync(out, "a");
    const c = spawnSync(husk, ["--root", root, "create", "--bundle", bundle, `bench${i}`], { env, stdio: ["ignore", fd, fd] });
    closeSync(fd);
    if (c.status !== 0) throw new Error(`husk create: ${readFileSync(out, "utf8")}`);
    cmd("start", `bench${i}`);
    while (!readFileSync(out, "utf8").includes("running")) await new Promise((r) => setTimeout(r, 5));
    if (i >= 0) times.push(performance.now() - t0);
    if (i === 0) rss = sandboxRss(root);
    cmd("delete", "--force", `bench${i}`);
  }
  return { times, rss };
}

// Resident memory of every host process that serves the sandboxes under root.
function sandboxRss(root: string): string {
  const parts: Record<string, number> = {};
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      // Proxy and shim carry the root in their inherited settings, not their arguments.
      if (!cmdline.includes(root) && !readFileSync(`/proc/${pid}/environ`, "utf8").includes(root)) continue;
      const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
      const name = /qemu-system/.test(cmdline) ? "qemu" : /virtiofsd/.test(cmdline) ? "virtiofsd" : /\0shim\0/.test(cmdline) ? "shim" : /\0proxy\0/.test(cmdline) ? "proxy" : "other";
      parts[name] = (parts[name] ?? 0) + kb;
    } catch {}
  }
  const total = Object.values(parts).reduce((a, b) => a + b, 0);
  return `${(total / 1024).toFixed(0)} MiB (${Object.entries(parts).map(([k, v]) => `${k} ${(v / 1024).toFixed(0)}`).join(", ")})`;
}

// VM templates need QEMU 10 (Debian bookworm-backports, fetched as the tests
// do): cold and from a template with the same QEMU, beside the bare boot.
async function templateFigures(guestDir: string, version: string, work: string, bare: number): Promise<void> {
  let qemu10: string;
  try {
    qemu10 = (await import("../test/helpers/qemu10.ts")).qemu10();
  } catch (e) {
    return console.log(`vm: templates: n/a (${(e as Error).message})`);
  }
  const cold = await createToRunning(guestDir, version, work, { HUSK_QEMU: qemu10, HUSK_VM_TEMPLATES: "0" });
  const warm = await createToRunning(guestDir, version, work, { HUSK_QEMU: qemu10 }, true);
  const ratio = (xs: number[]) => (median(xs) / bare).toFixed(2);
  console.log(`vm: husk create to running, QEMU 10, cold: ${fmt(cold.times)}; ratio to the near-empty boot ${ratio(cold.times)} (target <= 1.5)`);
  console.log(`vm: husk create to running, QEMU 10, from a template: ${fmt(warm.times)}; ratio ${ratio(warm.times)} (target <= 0.5)`);
}

const guestDir = process.env.HUSK_GUEST_DIR ?? "/var/tmp/husk-test-guest";
const qemu = findExecutable(process.env.HUSK_QEMU ?? "qemu-system-x86_64");
if (!qemu || listGuestVersions(guestDir).length === 0) {
  console.log(`vm: skipped: ${!qemu ? "no qemu-system-x86_64" : `no guest assets in ${guestDir} (husk guest build --dest ${guestDir})`}`);
} else {
  const assets = resolveGuestAssets(guestDir);
  const work = mkdtempSync("/tmp/husk-bench-vm-");
  try {
    const tiny = tinyInitrd(work);
    const empty: number[] = [];
    const ours: number[] = [];
    const ready: number[] = [];
    const agentRun: number[] = [];
    const agent: Array<number | string> = [];
    mkdirSync(join(work, "shared"));
    for (let i = 0; i < RUNS; i++) {
      empty.push(await bootToMark(qemu, assets, tiny, "", "tiny-init-reached"));
      ours.push(await bootToMark(qemu, assets, assets.initrd, "husk.mode=probe", "husk-guest-probe-ok"));
      const spec: VmSpec = { sandboxId: `b${i}`, vmDir: join(work, `vm${i}`), sharedDir: join(work, "shared"), cpus: 1, memoryMiB: 256 };
      const r = await shellReady(spec, guestDir, work);
      ready.push(r.ready);
      agentRun.push(r.agentRun);
      const agentBin = join(assets.dir, "husk");
      agent.push(existsSync(agentBin) ? await agentReady({ ...spec, vmDir: join(work, `vma${i}`) }, guestDir, work, agentBin) : "n/a: agent not in the share");
    }
    console.log(`vm: assets ${assets.version}, accel ${accel}, initrd ${(readFileSync(assets.initrd).length / 1048576).toFixed(1)} MiB`);
    console.log(`vm: kernel to init, near-empty initramfs: ${fmt(empty)}`);
    console.log(`vm: kernel to husk init (real initramfs): ${fmt(ours)}`);
    console.log(`vm: start() to shell ready on the agent port (${GUEST_READY_MARK}): ${fmt(ready)}`);
    console.log(`vm: agent binary first run over virtio-fs: ${fmt(agentRun)}`);
    const nums = agent.filter((a): a is number => typeof a === "number");
    console.log(`vm: start() to agent handshake: ${nums.length ? fmt(nums) : String(agent[0])}`);
    for (const b of breakdown) if (b.ms.length) console.log(`vm:   ${b.step}: ${fmt(b.ms)}`);
    const cli = await createToRunning(guestDir, assets.version, work);
    console.log(`vm: husk create to container process running (CLI, qemu): ${fmt(cli.times)}; ratio to the near-empty boot ${(median(cli.times) / median(empty)).toFixed(2)} (target <= 2.0)`);
    console.log(`vm: host RSS per idle sandbox: ${cli.rss}`);
    await templateFigures(guestDir, assets.version, work, median(empty));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
