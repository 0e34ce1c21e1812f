import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { BUSYBOX_IMAGE, startCriNode, type CriClients, type CriNode } from "../helpers/cri.ts";
import { findLeaks, noLeaks, type Leaks } from "../helpers/leaks.ts";
import { INDEX_DIR } from "../../lib/persist/index.ts";
import { vmEnv, vmSkipReason } from "../qemu/assets.ts";

// Kubernetes pods the way kubelet makes them: a CRI client (cri-api's proto,
// gRPC) drives containerd's CRI plugin, whose runtime handler `husk` is the
// runc shim with BinaryName = husk. A pod is one sandbox (one VM with qemu),
// its containers join it. containerd, its CNI bridge and the pods' network
// namespaces all live in a network namespace this test creates.

const work = mkdtempSync(join(tmpdir(), "husk-cri-"));
const vmSkip = vmSkipReason();
if (vmSkip) console.log(`test/e2e/cri (qemu): skipped: ${vmSkip}`);
const MiB = 1024 * 1024;
const POD_MEMORY_MIB = 160;
const VM_OVERHEAD_MIB = 192; // [vm] memory_overhead's default

function run(cmd: string[], timeout = 60_000) {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: "utf8", timeout });
  return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

// Interfaces named like husk's taps, and ingress qdiscs, in a netns.
function tapsAndFilters(netns: string): string[] {
  const links = run(["ip", "-n", netns, "-o", "link"]).stdout.split("\n").filter((l) => l.includes("_husk"));
  const qdiscs = run(["tc", "-n", netns, "qdisc", "show"]).stdout.split("\n").filter((l) => l.includes("ingress"));
  return [...links, ...qdiscs];
}

// cgroup directories named after any of the ids, anywhere in the host's hierarchies.
function cgroupsOf(ids: string[]): string[] {
  const found = run(["find", "/sys/fs/cgroup", "-maxdepth", "4", "-type", "d"]).stdout.split("\n");
  return found.filter((d) => ids.some((id) => d.endsWith(id)));
}

// What husk left under its root, once its processes had time to go. The
// shim's --root is <Root>/<namespace>: that directory and its (empty) index
// stay, as runc's would.
async function leftBehind(root: string, kept: string[]): Promise<Leaks> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = findLeaks(root);
    const leaks = { ...found, files: found.files.filter((f) => !kept.includes(f)) };
    if (JSON.stringify(leaks) === JSON.stringify(noLeaks) || Date.now() > deadline) return leaks;
    await Bun.sleep(200);
  }
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe.each([
  ["local", 1],
  ["qemu", 2],
] as const)("Kubernetes pods through containerd's CRI, %s driver", (driver, n) => {
  const skip = driver === "qemu" ? vmSkip : undefined;
  const it = test.skipIf(!!skip);
  const dir = join(work, driver);
  const hostPort = 19080 + n;
  let node: CriNode;
  let cri: CriClients;
  let huskRoot: string;
  let huskConfig: string;
  let netns: string;
  let subnet: string;
  let pod: string;
  let podConfig: Record<string, unknown>;
  const ids: Record<string, string> = {};
  const podCgroup = `/husk-cri-${process.pid}/pod-${driver}`;
  const inNs = (cmd: string[]) => node.inNs(cmd);

  const exec = async (id: string, script: string, timeout = 0n) => {
    const r = await cri.runtime.execSync({ containerId: id, cmd: ["sh", "-c", script], timeout });
    return { stdout: text(r.stdout), stderr: text(r.stderr), exitCode: r.exitCode as number };
  };
  const container = async (name: string, script: string, extra: Record<string, unknown> = {}) => {
    const r = await cri.runtime.createContainer({
      podSandboxId: pod,
      config: { metadata: { name }, image: { image: BUSYBOX_IMAGE }, command: ["sh", "-c", script], logPath: `${name}.log`, ...extra },
      sandboxConfig: podConfig,
    });
    return r.containerId as string;
  };

  beforeAll(async () => {
    if (skip) return;
    node = await startCriNode(dir, n, { husk: { driver, guest: driver === "qemu" ? vmEnv() : {} } });
    ({ cri, netns, subnet } = node);
    ({ root: huskRoot, config: huskConfig } = node.handlers.husk!);
  }, 600_000);

  afterAll(async () => {
    if (skip) return;
    try {
      for (const p of (await cri.runtime.listPodSandbox({})).items) {
        await cri.runtime.stopPodSandbox({ podSandboxId: p.id }).catch(() => {});
        await cri.runtime.removePodSandbox({ podSandboxId: p.id }).catch(() => {});
      }
    } finally {
      await node?.stop();
      // The pod cgroup is kubelet's to remove: deepest first, in every hierarchy.
      for (const d of run(["find", "/sys/fs/cgroup", "-depth", "-type", "d", "-path", `*${podCgroup.split("/")[1]}*`]).stdout.split("\n").filter(Boolean))
        run(["rmdir", d]);
    }
  }, 300_000);

  it("Version names containerd and CRI v1", async () => {
    const v = await cri.runtime.version({});
    expect(v.runtimeName).toBe("containerd");
    expect(v.runtimeApiVersion).toBe("v1");
  });

  it("RunPodSandbox (handler husk): the pod has its hostname, DNS config and an IP the host reaches", async () => {
    podConfig = {
      metadata: { name: "web", uid: `uid-${driver}`, namespace: "default", attempt: 0 },
      hostname: "web-pod",
      logDirectory: join(dir, "logs"),
      dnsConfig: { servers: ["10.96.0.10"], searches: ["default.svc.cluster.local"], options: ["ndots:5"] },
      portMappings: [{ protocol: cri.api.Protocol.TCP, containerPort: 8080, hostPort }],
      labels: { app: "husk-cri" },
      // The pod's limits, as kubelet sums them: containerd passes them on the sandbox container.
      linux: {
        resources: { memoryLimitInBytes: BigInt(POD_MEMORY_MIB * MiB), cpuPeriod: 100_000n, cpuQuota: 150_000n },
        cgroupParent: podCgroup, // kubelet's pod cgroup (cgroupfs driver)
        sysctls: { "net.ipv4.ip_unprivileged_port_start": "80" }, // a pod's safe sysctl, set in its network
      },
    };
    mkdirSync(join(dir, "logs"), { recursive: true });
    pod = (await cri.runtime.runPodSandbox({ config: podConfig, runtimeHandler: "husk" })).podSandboxId;
    const status = (await cri.runtime.podSandboxStatus({ podSandboxId: pod })).status;
    expect(status.state).toBe(cri.api.PodSandboxState.SANDBOX_READY);
    expect(status.network.ip).toMatch(new RegExp(`^${subnet.replaceAll(".", "\\.")}\\.\\d+$`));
    expect(status.labels).toEqual({ app: "husk-cri" });
    expect(status.runtimeHandler).toBe("husk");
  }, 300_000);

  it("two containers: one boot, the pod's hostname, DNS and sysctl, B reaches A on localhost, the host reaches A by pod IP and hostPort", async () => {
    ids.a = await container("a", "mkdir -p /w && hostname > /w/i && httpd -f -p 8080 -h /w", { linux: { resources: { memoryLimitInBytes: BigInt(64 * MiB) } } });
    await cri.runtime.startContainer({ containerId: ids.a });
    ids.b = await container("b", "trap 'exit 7' TERM; while true; do sleep 0.2; done");
    await cri.runtime.startContainer({ containerId: ids.b });

    const boot = (id: string) => exec(id, "cat /proc/sys/kernel/random/boot_id").then((r) => r.stdout.trim());
    const [bootA, bootB] = [await boot(ids.a), await boot(ids.b)];
    expect(bootA).toMatch(/^[0-9a-f-]{36}$/);
    expect(bootB).toBe(bootA);
    const hostBoot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    if (driver === "qemu") {
      expect(bootA).not.toBe(hostBoot);
      // One VM for the pod (the pause container's), none per container,
      // accounted in the pod's cgroup, where kubelet's limits apply.
      const vms = findLeaks(huskRoot).processes.filter((p) => p.includes("qemu-system"));
      expect(vms).toHaveLength(1);
      const memoryCgroup = readFileSync(`/proc/${vms[0]!.split(":")[0]}/cgroup`, "utf8").split("\n").find((l) => /^\d+:memory:/.test(l) || l.startsWith("0::"));
      expect(memoryCgroup?.split(":")[2]).toBe(`${podCgroup}/${pod}`);
    }
    for (const id of [ids.a, ids.b]) expect((await exec(id, "hostname")).stdout).toBe("web-pod\n");
    expect((await exec(ids.b, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start")).stdout).toBe("80\n");
    const resolv = (await exec(ids.b, "cat /etc/resolv.conf")).stdout;
    expect(resolv).toMatch(/^nameserver 10\.96\.0\.10$/m);
    expect(resolv).toMatch(/^search default\.svc\.cluster\.local$/m);
    expect(resolv).toMatch(/^options ndots:5$/m);

    let page = "";
    for (let i = 0; i < 100 && page !== "web-pod\n"; i++) {
      page = (await exec(ids.b, "wget -qO- http://127.0.0.1:8080/i 2>&1")).stdout;
      if (page !== "web-pod\n") await Bun.sleep(300);
    }
    expect(page).toBe("web-pod\n");
    const ip = (await cri.runtime.podSandboxStatus({ podSandboxId: pod })).status.network.ip;
    expect(inNs(["curl", "-s", "-m", "10", `http://${ip}:8080/i`]).stdout).toBe("web-pod\n");
    expect(inNs(["curl", "-s", "-m", "10", `http://${subnet}.1:${hostPort}/i`]).stdout).toBe("web-pod\n"); // the hostPort
  }, 300_000);

  it("ContainerStatus, ListContainers, ListPodSandbox", async () => {
    const s = (await cri.runtime.containerStatus({ containerId: ids.a })).status;
    expect(s.state).toBe(cri.api.ContainerState.CONTAINER_RUNNING);
    expect(s.startedAt).toBeGreaterThan(0n);
    expect(s.metadata.name).toBe("a");
    const listed = (await cri.runtime.listContainers({ filter: { podSandboxId: pod } })).containers;
    expect(listed.map((c: { id: string }) => c.id).sort()).toEqual([ids.a, ids.b].sort());
    const pods = (await cri.runtime.listPodSandbox({ filter: { labelSelector: { app: "husk-cri" } } })).items;
    expect(pods.map((p: { id: string; state: number }) => [p.id, p.state])).toEqual([[pod, cri.api.PodSandboxState.SANDBOX_READY]]);
  });

  it("a container that ends by itself: its exit code and times in ContainerStatus, its output in the pod's log (kubectl logs)", async () => {
    const once = await container("once", "echo hello from once; exit 3");
    await cri.runtime.startContainer({ containerId: once });
    let s: { state: number; exitCode: number; startedAt: bigint; finishedAt: bigint };
    do {
      await Bun.sleep(200);
      s = (await cri.runtime.containerStatus({ containerId: once })).status;
    } while (s.state !== cri.api.ContainerState.CONTAINER_EXITED);
    expect(s.exitCode).toBe(3);
    expect(s.finishedAt).toBeGreaterThanOrEqual(s.startedAt);
    expect(readFileSync(join(dir, "logs", "once.log"), "utf8")).toMatch(/^\S+ stdout F hello from once$/m);
    await cri.runtime.removeContainer({ containerId: once });
  }, 120_000);

  it("ExecSync: stdout, stderr, exit code; a timeout ends it", async () => {
    expect(await exec(ids.b, "echo out; echo err >&2; exit 3")).toEqual({ stdout: "out\n", stderr: "err\n", exitCode: 3 });
    const t0 = Date.now();
    await expect(exec(ids.b, "sleep 60", 2n)).rejects.toThrow(/timeout|deadline/i);
    expect(Date.now() - t0).toBeLessThan(30_000);
  }, 120_000);

  it("UpdateContainerResources reaches the container's cgroup", async () => {
    await cri.runtime.updateContainerResources({ containerId: ids.b, linux: { memoryLimitInBytes: BigInt(96 * MiB), cpuPeriod: 100_000n, cpuQuota: 50_000n } });
    const limit = await exec(ids.b, "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes");
    expect(limit.stdout.trim()).toBe(String(96 * MiB));
  });

  it("StopContainer: TERM within the grace period, then KILL", async () => {
    let t0 = Date.now();
    await cri.runtime.stopContainer({ containerId: ids.b, timeout: 20n });
    expect(Date.now() - t0).toBeLessThan(15_000);
    let s = (await cri.runtime.containerStatus({ containerId: ids.b })).status;
    expect([s.state, s.exitCode]).toEqual([cri.api.ContainerState.CONTAINER_EXITED, 7]); // its TERM handler
    expect(s.finishedAt).toBeGreaterThanOrEqual(s.startedAt);

    const deaf = await container("deaf", "trap '' TERM; while true; do sleep 0.2; done");
    await cri.runtime.startContainer({ containerId: deaf });
    t0 = Date.now();
    await cri.runtime.stopContainer({ containerId: deaf, timeout: 2n });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2000);
    s = (await cri.runtime.containerStatus({ containerId: deaf })).status;
    expect([s.state, s.exitCode]).toEqual([cri.api.ContainerState.CONTAINER_EXITED, 137]);
    await cri.runtime.removeContainer({ containerId: deaf });
    await cri.runtime.removeContainer({ containerId: ids.b });
    expect((await cri.runtime.listContainers({ filter: { podSandboxId: pod } })).containers.map((c: { id: string }) => c.id)).toEqual([ids.a]);
  }, 120_000);

  if (driver === "qemu") it("the pod's VM is sized from the pod's limits: their memory plus the VM's own, vCPUs from the CPU quota", async () => {
    const memTotalKiB = Number(/MemTotal:\s+(\d+)/.exec((await exec(ids.a, "cat /proc/meminfo")).stdout)![1]);
    const vmMiB = POD_MEMORY_MIB + VM_OVERHEAD_MIB;
    expect(memTotalKiB / 1024).toBeLessThanOrEqual(vmMiB);
    expect(memTotalKiB / 1024).toBeGreaterThan(vmMiB * 0.8); // less what the guest kernel keeps
    expect((await exec(ids.a, "nproc")).stdout.trim()).toBe(String(Math.min(2, availableParallelism())));
  });

  it("bad input: a clear CRI error naming what husk refused, and nothing left behind", async () => {
    const startFails = async (name: string, extra: Record<string, unknown>) => {
      const id = await container(name, "sleep 100", extra);
      const err = await cri.runtime.startContainer({ containerId: id }).then(() => undefined, (e: Error) => e.message);
      await cri.runtime.removeContainer({ containerId: id });
      return err;
    };
    // More memory than the host has, for a container of the pod and for a whole pod.
    expect(await startFails("huge", { linux: { resources: { memoryLimitInBytes: BigInt(totalmem()) * 4n } } })).toMatch(
      /linux\.resources\.memory\.limit: a VM of \d+ MiB is more than this host's \d+ MiB/,
    );
    const bigPod = {
      ...podConfig, metadata: { name: "big", uid: `big-${driver}`, namespace: "default" }, portMappings: [],
      linux: { resources: { memoryLimitInBytes: BigInt(totalmem()) * 4n } },
    };
    await expect(cri.runtime.runPodSandbox({ config: bigPod, runtimeHandler: "husk" })).rejects.toThrow(
      /annotation io\.kubernetes\.cri\.sandbox-memory \(the pod's memory limits\): a VM of \d+ MiB is more than this host's \d+ MiB/,
    );
    // An option for husk it does not know (a pod annotation containerd passes on).
    const typo = { ...podConfig, metadata: { name: "typo", uid: `typo-${driver}`, namespace: "default" }, portMappings: [], annotations: { "io.husk.vm.memroy": "1g" } };
    await expect(cri.runtime.runPodSandbox({ config: typo, runtimeHandler: "husk" })).rejects.toThrow(
      /annotation io\.husk\.vm\.memroy is not one husk knows \(io\.husk\.vm\.memory, io\.husk\.vm\.cpus\)/,
    );
    if (driver === "qemu")
      expect(await startFails("too-big-for-the-vm", { linux: { resources: { memoryLimitInBytes: BigInt(POD_MEMORY_MIB * 2 * MiB) } } })).toMatch(
        new RegExp(`linux\\.resources\\.memory\\.limit \\(${POD_MEMORY_MIB * 2} MiB\\) does not fit in the pod's VM of ${POD_MEMORY_MIB + VM_OVERHEAD_MIB} MiB`),
      );
    // A sandbox husk does not know: its settings now name another store, where the pod is not.
    const settings = readFileSync(huskConfig, "utf8");
    writeFileSync(huskConfig, `persist = "sqlite"\n${settings}`);
    try {
      expect(await startFails("unknown-sandbox", {})).toContain(`sandbox ${pod} named by io.kubernetes.cri.sandbox-id does not exist`);
    } finally {
      writeFileSync(huskConfig, settings);
      for (const f of ["persist.db", "persist.db-wal", "persist.db-shm"]) rmSync(join(huskRoot, "k8s.io", f), { force: true });
    }
    expect((await cri.runtime.listPodSandbox({})).items.map((p: { id: string }) => p.id)).toEqual([pod]);
    expect(readdirSync(join(huskRoot, "k8s.io")).filter((x) => x !== INDEX_DIR)).toEqual([pod]); // one sandbox: the pod
  }, 300_000);

  it("StopPodSandbox and RemovePodSandbox leave nothing: no husk process, VM, tap, mount, cgroup or file", async () => {
    await cri.runtime.stopPodSandbox({ podSandboxId: pod });
    await cri.runtime.removePodSandbox({ podSandboxId: pod });
    expect((await cri.runtime.listPodSandbox({})).items).toEqual([]);
    expect((await cri.runtime.listContainers({})).containers).toEqual([]);
    const ns = join(huskRoot, "k8s.io");
    expect(await leftBehind(huskRoot, [ns, join(ns, INDEX_DIR)])).toEqual(noLeaks);
    expect(tapsAndFilters(netns)).toEqual([]);
    expect(cgroupsOf([pod, ids.a!, ids.b!])).toEqual([]);
  }, 120_000);
});
