import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findLeaks } from "../test/helpers/leaks.ts";
import { BUSYBOX_IMAGE, startCriNode, type HuskHandler } from "../test/helpers/cri.ts";
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

interface Figures {
  up: number[];
  down: number[];
  pss: number[];
}

const work = mkdtempSync(join(tmpdir(), "husk-bench-cri-"));
const vmSkip = vmSkipReason();
const husk: Record<string, HuskHandler> = { "husk-local": { driver: "local" } };
if (!vmSkip) husk["husk-qemu"] = { driver: "qemu", guest: vmEnv() };
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
    f.pss.push(pssMiB(findLeaks(root).processes.map((p) => Number(p.split(":")[0]))));
  }
  const t1 = performance.now();
  await runtime.stopPodSandbox({ podSandboxId: pod });
  await runtime.removePodSandbox({ podSandboxId: pod });
  f.down.push(performance.now() - t1);
}

try {
  const results: [string, Figures][] = [];
  for (const handler of ["runc", ...Object.keys(husk)]) {
    const f: Figures = { up: [], down: [], pss: [] };
    for (let i = 0; i < RUNS; i++) await onePod(handler, i, f);
    results.push([handler, f]);
  }
  const runc = results[0]![1];
  for (const [handler, f] of results) {
    const ratio = (xs: number[], base: number[]) => (handler === "runc" ? "" : ` (${(median(xs) / median(base)).toFixed(1)}x runc)`);
    console.log(`CRI ${handler.padEnd(10)} RunPodSandbox -> container running: ${fmt(f.up)}${ratio(f.up, runc.up)}`);
    console.log(`CRI ${handler.padEnd(10)} StopPodSandbox + RemovePodSandbox:  ${fmt(f.down)}${ratio(f.down, runc.down)}`);
    if (f.pss.length) console.log(`CRI ${handler.padEnd(10)} husk's processes for a 1-container pod: ${median(f.pss).toFixed(0)} MiB PSS (median)`);
  }
  if (vmSkip) console.log(`CRI husk-qemu: n/a (${vmSkip})`);
} finally {
  await node.stop();
  rmSync(work, { recursive: true, force: true });
}
