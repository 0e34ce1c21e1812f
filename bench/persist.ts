// Persist store: median save (with fsync / WAL commit) and load of sandbox
// documents with 1, 10 and 100 containers, fs and sqlite. Targets on the
// project machine: save of the 100-container document <= 2 ms, load <= 1 ms.
import { closeSync, constants, fsyncSync, mkdtempSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newSandboxDoc, openStore, STORE_KINDS, type ContainerDoc, type SandboxDoc } from "../lib/persist/index.ts";

const ROUNDS = 200;

function sandbox(containers: number): SandboxDoc {
  const at = new Date().toISOString();
  const doc = newSandboxDoc({
    id: "bench",
    state: "running",
    config: { cpus: 1, memoryMiB: 256, hypervisor: "qemu" },
    hypervisor: { driver: "qemu", vmDir: "/run/husk/bench", pid: 1000, apiSocket: "/run/husk/bench/qmp.sock", agent: { kind: "virtio-serial", path: "/run/husk/bench/agent.sock" } },
    agent: { channel: { kind: "virtio-serial", path: "/run/husk/bench/agent.sock" }, version: "0.1.0", protocolVersion: "1", capabilities: ["create", "start", "kill", "wait", "exec"] },
  });
  doc.containers = Array.from({ length: containers }, (_, i): ContainerDoc => ({
    id: `container-${i}`,
    bundle: `/run/containerd/io.containerd.runtime.v2.task/k8s.io/container-${i}`,
    rootfs: `/run/containerd/io.containerd.runtime.v2.task/k8s.io/container-${i}/rootfs`,
    state: "running",
    pid: 2000 + i,
    createdAt: at,
    startedAt: at,
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ["/usr/local/bin/server", "--port", String(8000 + i), "--verbose"],
      env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=bench", `INDEX=${i}`],
      cwd: "/",
      capabilities: { bounding: ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"] },
    },
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755"] },
      { destination: "/etc/hosts", type: "bind", source: "/var/lib/hosts", options: ["rbind", "ro"] },
    ],
    annotations: { "io.kubernetes.cri.container-name": `c${i}` },
  }));
  return doc;
}

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function time(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

const rows: string[] = [];
for (const kind of STORE_KINDS) {
  for (const n of [1, 10, 100]) {
    const root = mkdtempSync(join(tmpdir(), "husk-bench-persist-"));
    const store = openStore({ root, kind });
    const doc = sandbox(n);
    store.save(doc); // creates the directory / database
    const saves: number[] = [];
    const loads: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      doc.containers[0]!.pid = 3000 + i; // a real change each time
      saves.push(time(() => store.save(doc)));
      loads.push(time(() => store.load("bench")));
    }
    const bytes = store.loadRaw("bench").length;
    store.close();
    rmSync(root, { recursive: true, force: true });
    rows.push(
      `persist ${kind.padEnd(6)} ${String(n).padStart(3)} containers (${(bytes / 1024).toFixed(0).padStart(4)} KiB): ` +
        `save ${median(saves).toFixed(3)} ms, load ${median(loads).toFixed(3)} ms (median of ${ROUNDS})`,
    );
    console.log(rows.at(-1));
  }
}
// The floor under any fs save: the same protocol on 90 KiB of bytes, no husk code.
{
  const dir = mkdtempSync(join(tmpdir(), "husk-bench-floor-"));
  const bytes = Buffer.alloc(90 * 1024, 32);
  const floor = Array.from({ length: ROUNDS }, (_, i) =>
    time(() => {
      const tmp = join(dir, `t${i}`);
      const fd = openSync(tmp, "w");
      writeSync(fd, bytes);
      fsyncSync(fd);
      closeSync(fd);
      renameSync(tmp, join(dir, "doc"));
      const d = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
      fsyncSync(d);
      closeSync(d);
    }),
  );
  rmSync(dir, { recursive: true, force: true });
  console.log(`floor: write 90 KiB + fsync + rename + fsync dir ${median(floor).toFixed(3)} ms (median of ${ROUNDS})`);
}
// fsync latency follows whatever else the disk and the two cores are doing.
const load = (await Bun.file("/proc/loadavg").text()).split(" ").slice(0, 3).join(" ");
console.log(`targets for 100 containers: save <= 2 ms, load <= 1 ms (tmpdir ${tmpdir()}, load average ${load})`);
