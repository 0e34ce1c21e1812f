import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findLeaks } from "../test/helpers/leaks.ts";
import { BUSYBOX_IMAGE, startCriNode, type HuskHandler } from "../test/helpers/cri.ts";
import { qemu10 } from "../test/helpers/qemu10.ts";
import { vmEnv, vmSkipReason } from "../test/qemu/assets.ts";

// Kubernetes pods through containerd's CRI, side by side in one run: the
// plain runc handler, husk local and husk qemu (TCG unless KVM). Per pod:
// RunPodSandbox -> CreateContainer -> StartContainer (one container running),
// then StopPodSandbox + RemovePodSandbox; and the PSS of husk's own processes
// for a running 1-container pod (what a RuntimeClass overhead must cover).
// Absolute VM figures under TCG mean little; compare the ratios.

const RUNS = Number(process.env.HUSK_BENCH_CRI_RUNS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) => `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}, n=${xs.length})`;

// Proportional set size (MiB) of the given processes.
function pssMiB(pids: number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      kib += Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0);
    } catch {} // gone meanwhile
  }
  return kib / 1024;
}

// CPU time (user + system, ms) the given processes used so far.
function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {}
  }
  return ticks * 10; // USER_HZ = 100
}

const IDLE_MS = 5000;

interface Figures {
  up: number[];
  down: number[];
  pss: number[];
  idleCpu: number[]; // % of one CPU husk's processes use while the pod idles
  parts?: Map<string, number>; // the first pod's PSS by process kind
}

// "qemu-system-x86_64", "virtiofsd", "husk shim", ... for a process's command line.
function kind(cmdline: string): string {
  const [argv0 = "", argv1 = ""] = cmdline.split(" ");
  const name = argv0.split("/").pop()!;
  return name === "husk" ? `husk ${argv1}` : name.startsWith("ld-linux") ? "virtiofsd" : name;
}

const work = mkdtempSync(join(tmpdir(), "husk-bench-cri-"));

function qemu10OrWhy(): { path: string } | string {
  try {
    return { path: qemu10() };
  } catch (e) {
    return (e as Error).message;
  }
}
const vmSkip = vmSkipReason();
const husk: Record<string, HuskHandler> = { "husk-local": { driver: "local" } };
if (!vmSkip) husk["husk-qemu"] = { driver: "qemu", guest: vmEnv() };
// QEMU 10 restores pods from a VM template (one with a network device); the
// first pod builds it and is not counted.
const q10 = vmSkip ? undefined : qemu10OrWhy();
if (typeof q10 === "object") husk["husk-qemu10"] = { driver: "qemu", guest: vmEnv(), config: `[qemu]\npath = "${q10.path}"\n` };
const node = await startCriNode(work, 9, husk);
const { runtime } = node.cri;

async function onePod(handler: string, i: number, f: Figures): Promise<void> {
  const config = { metadata: { name: `bench-${i}`, uid: `${handler}-${i}`, namespace: "bench" }, hostname: `bench-${i}`, linux: {} };
  const t0 = performance.now();
  const pod = (await runtime.runPodSandbox({ config, runtimeHandler: handler })).podSandboxId;
  const c = await runtime.createContainer({
    podSandboxId: pod,
    config: { metadata: { name: "sleeper" }, image: { image: BUSYBOX_IMAGE }, command: ["sleep", "3600"] },
    sandboxConfig: config,
  });
  await runtime.startContainer({ containerId: c.containerId });
  f.up.push(performance.now() - t0);
  const root = node.handlers[handler]?.root;
  if (root) {
    await Bun.sleep(2000); // settled: the guest booted, the agent idle
    // husk's processes: those naming its root or its sandbox's socket directory.
    const procs = findLeaks(root).processes.map((p) => ({ pid: Number(p.split(":")[0]), kind: kind(p.slice(p.indexOf(":") + 2)) }));
    const pids = procs.map((p) => p.pid);
    f.pss.push(pssMiB(pids));
    const before = cpuMs(pids);
    await Bun.sleep(IDLE_MS);
    f.idleCpu.push(((cpuMs(pids) - before) / IDLE_MS) * 100);
    if (!f.parts) {
      f.parts = new Map();
      for (const p of procs) f.parts.set(p.kind, (f.parts.get(p.kind) ?? 0) + pssMiB([p.pid]));
    }
  }
  const t1 = performance.now();
  await runtime.stopPodSandbox({ podSandboxId: pod });
  await runtime.removePodSandbox({ podSandboxId: pod });
  f.down.push(performance.now() - t1);
}

try {
  const results: [string, Figures][] = [];
  for (const handler of ["runc", ...Object.keys(husk)]) {
    const f: Figures = { up: [], down: [], pss: [], idleCpu: [] };
    if (handler === "husk-qemu10") await onePod(handler, RUNS, { up: [], down: [], pss: [], idleCpu: [] });
    for (let i = 0; i < RUNS; i++) await onePod(handler, i, f);
    results.push([handler, f]);
  }
  const runc = results[0]![1];
  for (const [handler, f] of results) {
    const ratio = (xs: number[], base: number[]) => (handler === "runc" ? "" : ` (${(median(xs) / median(base)).toFixed(1)}x runc)`);
    console.log(`CRI ${handler.padEnd(10)} RunPodSandbox -> container running: ${fmt(f.up)}${ratio(f.up, runc.up)}`);
    console.log(`CRI ${handler.padEnd(10)} StopPodSandbox + RemovePodSandbox:  ${fmt(f.down)}${ratio(f.down, runc.down)}`);
    if (!f.pss.length) continue;
    const parts = [...(f.parts ?? [])].map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ");
    console.log(`CRI ${handler.padEnd(10)} husk's processes for a 1-container pod: ${median(f.pss).toFixed(0)} MiB PSS (median; first pod: ${parts})`);
    console.log(`CRI ${handler.padEnd(10)} husk's processes while the pod idles: ${median(f.idleCpu).toFixed(1)}% of a CPU (median over ${IDLE_MS / 1000} s)`);
  }
  if (vmSkip) console.log(`CRI husk-qemu: n/a (${vmSkip})`);
  if (typeof q10 === "string") console.log(`CRI husk-qemu10: n/a (${q10})`);
} finally {
  await node.stop();
  rmSync(work, { recursive: true, force: true });
}
