import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { builtBinary } from "../helpers/husk.ts";
import { busyboxOciTar, busyboxRootfsTar } from "../helpers/images.ts";
import { installHostConfig } from "../helpers/host-config.ts";
import { startContainerd, type Containerd } from "../helpers/containerd.ts";
import { processesUsing, until } from "../helpers/cli.ts";
import { TEST_GUEST_DIR, buildAssets, vmSkipReason } from "../qemu/assets.ts";
import { qemu10 } from "../helpers/qemu10.ts";

// Real clients driving husk unchanged: podman (conmon) and containerd (runc v2
// shim with --runc-binary). One file, run in order: both read /etc/husk/config.toml.

const work = mkdtempSync(join(tmpdir(), "husk-clients-"));
const huskRoot = join(work, "husk-root");
let restoreConfig: () => void;

const readProc = (pid: string) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "latin1");
  } catch {
    return "";
  }
};

function run(cmd: string[], env: Record<string, string> = {}, input?: string) {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: "utf8", env: { ...process.env, ...env }, timeout: 120_000, input });
  return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

beforeAll(() => {
  restoreConfig = installHostConfig(`hypervisor = "local"\nroot = "${huskRoot}"\n`);
});
afterAll(() => restoreConfig?.());

const noLeftovers = async () => {
  await until(() => processesUsing(huskRoot).length === 0, 30_000, "husk processes to exit");
  expect(existsSync(huskRoot) ? readdirSync(huskRoot) : []).toEqual([]);
};

const vmSkip = vmSkipReason();
if (vmSkip) console.log(`test/e2e/clients (qemu): skipped: ${vmSkip}`);

// The settings conmon and containerd's shim find in /etc/husk/config.toml, per driver.
function driverConfig(driver: string): string {
  if (driver === "local") return `hypervisor = "local"\nroot = "${huskRoot}"\n`;
  const r = buildAssets();
  if (r.status !== 0) throw new Error(`husk guest build failed: ${r.stderr}`);
  const version = /guest assets (\S+)/.exec(r.stdout)![1]!;
  return `hypervisor = "qemu"\nroot = "${huskRoot}"\n[guest]\ndir = "${TEST_GUEST_DIR}"\nversion = "${version}"\n`;
}

const DRIVERS = [
  { driver: "local", skip: false },
  { driver: "qemu", skip: !!vmSkip },
];

// A VM sandbox boots under TCG: every scenario has room for a few boots.
const VM_TEST_MS = 300_000;

describe("podman --runtime husk", () => {
  const env = {
    CONTAINERS_STORAGE_CONF: join(work, "storage.conf"),
    CONTAINERS_CONF: join(work, "containers.conf"),
  };
  const podman = (...args: string[]) => run(["podman", "--runtime", builtBinary(), ...args], env);
  const podmanIn = (input: string, ...args: string[]) => run(["podman", "--runtime", builtBinary(), ...args], env, input);
  const image = "localhost/husk-busybox:latest";

  beforeAll(() => {
    writeFileSync(env.CONTAINERS_STORAGE_CONF, `[storage]\ndriver = "vfs"\nrunroot = "${work}/pm-run"\ngraphroot = "${work}/pm-graph"\n`);
    // Podman's default rlimits (1048576) need CAP_SYS_RESOURCE, which we lack here.
    writeFileSync(env.CONTAINERS_CONF, `[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n`);
    const imp = run(["podman", "import", busyboxRootfsTar(join(work, "img-podman")), image], env);
    expect(imp.status, imp.stderr).toBe(0);
  });

  describe.each(DRIVERS)("with the $driver driver", ({ driver, skip }) => {
    const vm = driver === "qemu";
    const it = test.skipIf(skip);
    let restoreDriver: () => void;
    beforeAll(() => {
      if (!skip) restoreDriver = installHostConfig(driverConfig(driver));
    }, 600_000);
    afterAll(() => restoreDriver?.());

    // podman cp enters the mount namespace of the pid husk gave it (the
    // shim's) and works from its root: there the container's volumes are
    // shared, and the rest is not the host's (a copy to /etc/... once wrote
    // the host's own file). podman top finds no host processes there either.
    function podmanCp(data: string): void {
      const probe = `husk-cp-probe-${process.pid}`;
      writeFileSync(join(data, "src"), "from the host\n");
      expect(podman("cp", join(data, "src"), "husk-s3:/data/in").status).toBe(0);
      expect(podman("exec", "husk-s3", "cat", "/data/in").stdout).toBe("from the host\n");
      writeFileSync(join(data, "probe"), "must not land on the host\n");
      expect(podman("cp", join(data, "probe"), `husk-s3:/${probe}`).status).not.toBe(0);
      expect(podman("cp", join(data, "probe"), `husk-s3:/tmp/${probe}`).status).not.toBe(0);
      expect(existsSync(`/${probe}`) || existsSync(`/tmp/${probe}`)).toBe(false);
      expect(podman("exec", "husk-s3", "sh", "-c", "echo out > /data/out").status).toBe(0);
      expect(podman("cp", "husk-s3:/data/out", join(data, "copied")).status).toBe(0);
      expect(readFileSync(join(data, "copied"), "utf8")).toBe("out\n");
      expect(podman("cp", "husk-s3:/etc/hostname", join(data, "hostname")).status).toBe(0);
      expect(readFileSync(join(data, "hostname"), "utf8").trim()).toBe(podman("exec", "husk-s3", "hostname").stdout.trim());
      expect(podman("top", "husk-s3").stdout).not.toContain("conmon");
    }

    it("run --rm prints hello, from the guest's kernel in a VM", async () => {
      const r = podman("run", "--rm", "--network", "none", image, "sh", "-c", "echo hello; uname -r");
      expect(r.stderr).toBe("");
      const [hello, kernel] = r.stdout.trim().split("\n");
      expect(hello).toBe("hello");
      if (vm) expect(kernel).not.toBe(release());
      else expect(kernel).toBe(release());
      expect(r.status).toBe(0);
      await noLeftovers();
    }, VM_TEST_MS);

    it("the exit code reaches podman", () => {
      expect(podman("run", "--rm", "--network", "none", image, "sh", "-c", "exit 3").status).toBe(3);
    }, VM_TEST_MS);

    it("-e and -w take effect", () => {
      const r = podman("run", "--rm", "--network", "none", "-e", "FOO=bar", "-w", "/tmp", image, "sh", "-c", "echo $FOO; pwd");
      expect(r.stdout).toBe("bar\n/tmp\n");
    }, VM_TEST_MS);

    it("--pid, --ipc and --uts host: the host's namespaces as under runc, or in a VM refused by name with nothing left", async () => {
      for (const kind of ["pid", "ipc", "uts"]) {
        const r = podman("run", "--rm", "--network", "none", `--${kind}`, "host", image, "readlink", `/proc/self/ns/${kind}`);
        if (vm) {
          expect(r.status).not.toBe(0);
          expect(r.stderr).toContain(`the spec shares the host's ${kind} namespace (not in linux.namespaces), which a VM sandbox cannot join`);
        } else {
          expect(r.stderr).toBe("");
          expect(r.stdout.trim()).toBe(readlinkSync(`/proc/self/ns/${kind}`));
        }
      }
      expect(podman("ps", "-aq").stdout).toBe("");
      await noLeftovers();
    }, VM_TEST_MS);

    it("--uidmap/--gidmap: root in a user namespace owns the image's root and writes to it", () => {
      const r = podman("run", "--rm", "--network", "none", "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536", image,
        "sh", "-c", "cat /proc/self/uid_map; mkdir /made && ls -lnd /made | awk '{print $3, $4}'");
      expect(r.stderr).toBe("");
      expect(r.stdout.split("\n").map((l) => l.trim().split(/\s+/).join(" "))).toEqual(["0 100000 65536", "0 0", ""]);
      expect(r.status).toBe(0);
    }, VM_TEST_MS);

    it("--network and --ipc container:X join X's sandbox: its network, its VM", async () => {
      const started = podman("run", "-d", "--name", "husk-j1", "--network", "none", image, "sh", "-c", "echo page > /tmp/i; httpd -f -p 8080 -h /tmp");
      expect(started.status, started.stderr).toBe(0);
      const boot = "cat /proc/sys/kernel/random/boot_id";
      const r = podman("run", "--rm", "--network", "container:husk-j1", "--ipc", "container:husk-j1", image,
        "sh", "-c", `ls /sys/class/net; wget -qO- http://127.0.0.1:8080/i; ${boot}`);
      expect(r.stderr).toBe("");
      const own = podman("exec", "husk-j1", "sh", "-c", boot).stdout;
      // The first's network (only lo) and its server on localhost: one network namespace, so one kernel, one VM.
      expect(r.stdout).toBe(`lo\npage\n${own}`);
      expect(podman("rm", "-f", "--time", "0", "husk-j1").status).toBe(0);
      await noLeftovers();
    }, VM_TEST_MS);

    it("podman pod: the infra container and its members share one sandbox; pod stop, start and rm", async () => {
      expect(podman("pod", "create", "--name", "husk-pod").status).toBe(0);
      const page = "echo page > /tmp/i; httpd -f -p 8080 -h /tmp";
      const started = podman("run", "-d", "--pod", "husk-pod", "--name", "husk-pa", image, "sh", "-c", page);
      expect(started.status, started.stderr).toBe(0);
      const r = podman("run", "--rm", "--pod", "husk-pod", image, "sh", "-c", "wget -qO- http://127.0.0.1:8080/i; hostname");
      expect([r.stderr, r.stdout]).toEqual(["", "page\nhusk-pod\n"]);
      expect(podman("pod", "stop", "-t", "1", "husk-pod").status).toBe(0);
      expect(podman("inspect", "--format", "{{.State.Status}}", "husk-pa").stdout.trim()).toBe("exited");
      const again = podman("pod", "start", "husk-pod");
      expect(again.status, again.stderr).toBe(0);
      const fetched = () => podman("exec", "husk-pa", "sh", "-c", "wget -qO- http://127.0.0.1:8080/i").stdout === "page\n";
      await until(fetched, 30_000, "the restarted pod's server");
      expect(podman("pod", "rm", "-f", "husk-pod").status).toBe(0);
      await noLeftovers();
    }, VM_TEST_MS);

    it("run -t and exec -t give the process a terminal (conmon's console socket)", async () => {
      const r = podman("run", "--rm", "-t", "--network", "none", image, "sh", "-c", "tty; exit 2");
      expect(r.stdout).toMatch(/^\/dev\/pts\/\d+\r\n$/);
      expect(r.status).toBe(2);
      const started = podman("run", "-d", "--name", "husk-t1", "--network", "none", image, "sleep", "100");
      expect(started.status, started.stderr).toBe(0);
      const ex = podman("exec", "-t", "husk-t1", "sh", "-c", "tty; exit 5");
      expect(ex.stdout).toMatch(/^\/dev\/pts\/\d+\r\n$/);
      expect(ex.status).toBe(5);
      expect(podman("rm", "-f", "--time", "0", "husk-t1").status).toBe(0);
      await noLeftovers();
    }, VM_TEST_MS);

    it("--memory, --pids-limit, --ulimit, --shm-size and an IPC --sysctl are the container's own", () => {
      // cgroup v2 in the guest; this host's cgroup v1 hierarchy for runc on the host.
      const files = vm ? "/sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max" : "/sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max";
      const script = `cat ${files} /proc/sys/kernel/shmmax; ulimit -n; ulimit -Hn; ulimit -u; df -k /dev/shm | tail -1`;
      // nproc is given: with any --ulimit podman asks for nproc 1048576, which runc cannot set above this host's hard limit.
      const r = podman("run", "--rm", "--network", "none", "--memory", "64m", "--pids-limit", "50", "--ulimit", "nofile=1234:2345",
        "--ulimit", "nproc=500:600", "--shm-size", "32m", "--sysctl", "kernel.shmmax=12345678", image, "sh", "-c", script);
      expect(r.stderr).toBe("");
      const lines = r.stdout.trim().split("\n");
      expect(lines.slice(0, 6)).toEqual([String(64 * 1024 * 1024), "50", "12345678", "1234", "2345", "500"]);
      expect(lines[6]!.split(/\s+/)[1]).toBe(String(32 * 1024)); // /dev/shm's size in KiB
      expect(r.status).toBe(0);
    }, VM_TEST_MS);

    // One container, many scenarios: a VM boot under TCG is the expensive part.
    it("run: --user, --hostname, --read-only, --cap-drop all, --tmpfs, a writable bind mount seen on the host, pid 1, stdin", async () => {
      const data = mkdtempSync(join(work, "bind-"));
      chmodSync(data, 0o777); // the container writes as uid 1000
      const script = [
        "id -u; id -g; hostname",
        "touch /ro-test 2>/dev/null && echo rw || echo read-only",
        "grep CapEff /proc/self/status",
        "grep -c ' /scratch tmpfs ' /proc/mounts; echo t > /scratch/t && cat /scratch/t",
        "echo from-container > /data/written",
        "echo pid=$$",
        "cat",
      ].join("; ");
      const r = podmanIn("from stdin\n", "run", "--rm", "-i", "--network", "none", "--user", "1000:1001", "--hostname", "husk-host",
        "--read-only", "--cap-drop", "all", "--tmpfs", "/scratch", "-v", `${data}:/data`, image, "sh", "-c", script);
      expect(r.stderr).toBe("");
      expect(r.stdout.split("\n")).toEqual(["1000", "1001", "husk-host", "read-only", "CapEff:\t0000000000000000", "1", "t", "pid=1", "from stdin", ""]);
      expect(readFileSync(join(data, "written"), "utf8")).toBe("from-container\n");
      await noLeftovers();
    }, VM_TEST_MS);

    it("run -d: inspect's pid is alive; cp through a volume, never onto the host's root; exec -i -e -w --user; logs; pause/unpause; update --memory; kill -s USR1 reaches init; stop -t 1 of a TERM-ignoring init is 137", async () => {
      // pid 1 ignores TERM unless it handles it: stop has to escalate to KILL.
      const init = "trap 'echo got-usr1' USR1; echo ready; while true; do sleep 0.2; done";
      const data = mkdtempSync(join(work, "cp-"));
      const started = podman("run", "-d", "--name", "husk-s3", "--network", "none", "-v", `${data}:/data`, image, "sh", "-c", init);
      expect(started.status, started.stderr).toBe(0);
      const pid = Number(podman("inspect", "--format", "{{.State.Pid}}", "husk-s3").stdout.trim());
      expect(pid).toBeGreaterThan(1);
      expect(existsSync(`/proc/${pid}`)).toBe(true);
      podmanCp(data);
      const ex = podmanIn("piped in\n", "exec", "-i", "-e", "FOO=bar", "-w", "/tmp", "--user", "1000", "husk-s3", "sh", "-c", "echo $FOO; pwd; id -u; cat");
      expect([ex.status, ex.stdout]).toEqual([0, "bar\n/tmp\n1000\npiped in\n"]);
      await until(() => podman("logs", "husk-s3").stdout.includes("ready"), 30_000, "podman logs to show the container's output");
      expect(podman("pause", "husk-s3").status).toBe(0);
      expect(podman("inspect", "--format", "{{.State.Status}}", "husk-s3").stdout.trim()).toBe("paused");
      expect(podman("unpause", "husk-s3").status).toBe(0);
      expect(podman("inspect", "--format", "{{.State.Status}}", "husk-s3").stdout.trim()).toBe("running");
      // podman update reaches the running container's own cgroup (husk update).
      const upd = podman("update", "--memory", "96m", "husk-s3");
      expect(upd.status, upd.stderr).toBe(0);
      const memFile = vm ? "/sys/fs/cgroup/memory.max" : "/sys/fs/cgroup/memory/memory.limit_in_bytes";
      expect(podman("exec", "husk-s3", "cat", memFile).stdout.trim()).toBe(String(96 * 1024 * 1024));
      expect(podman("kill", "-s", "USR1", "husk-s3").status).toBe(0);
      await until(() => podman("logs", "husk-s3").stdout.includes("got-usr1"), 30_000, "USR1 to reach the container's init");
      expect(podman("stop", "-t", "1", "husk-s3").status).toBe(0);
      expect(podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "husk-s3").stdout.trim()).toBe("exited 137");
      expect(podman("rm", "-f", "husk-s3").status).toBe(0);
      await noLeftovers();
    }, VM_TEST_MS);

    it("wait returns the exit status (42)", async () => {
      const started = podman("run", "-d", "--name", "husk-s4", "--network", "none", image, "sh", "-c", "sleep 1; exit 42");
      expect(started.status, started.stderr).toBe(0);
      expect(podman("wait", "husk-s4").stdout.trim()).toBe("42");
      expect(podman("rm", "husk-s4").status).toBe(0);
      await noLeftovers();
    }, VM_TEST_MS);

    // The bad day as podman sees it: the VM's QEMU is killed under a running
    // container; conmon's pid (husk's shim) exits as killed and `podman wait` returns.
    if (vm) it("a VM that dies: podman wait returns 137 within seconds, rm cleans up", async () => {
      const started = podman("run", "-d", "--name", "husk-s5", "--network", "none", image, "sleep", "300");
      expect(started.status, started.stderr).toBe(0);
      const id = started.stdout.trim();
      const qemu = readdirSync("/proc").find((p) => /^\d+$/.test(p) && readProc(p).includes(`\0husk-${id}\0`));
      expect(qemu, "the sandbox's QEMU").toBeDefined();
      const t0 = Date.now();
      process.kill(Number(qemu), "SIGKILL");
      const waited = run(["timeout", "30", "podman", "--runtime", builtBinary(), "wait", "husk-s5"], env);
      expect(waited.stdout.trim()).toBe("137");
      console.log(`clients: podman wait returned ${Date.now() - t0} ms after QEMU was killed`);
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(podman("rm", "husk-s5").status).toBe(0);
      await noLeftovers();
    }, VM_TEST_MS);

    // podman asks the runtime to save the container's whole sandbox VM and to
    // bring it back (QEMU 10 can: its path goes in the config file); a VM-less
    // sandbox is refused by name and keeps running.
    it("container checkpoint and restore: the container comes back with its writes and its output continues", async () => {
      const undo = vm ? installHostConfig(`${driverConfig(driver)}[qemu]\npath = "${qemu10()}"\n`) : () => {};
      try {
        const loop = "echo kept > /tmp/w; i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done";
        const started = podman("run", "-d", "--name", "husk-ck", "--network", "none", image, "sh", "-c", loop);
        expect(started.status, started.stderr).toBe(0);
        await until(() => podman("logs", "husk-ck").stdout.includes("tick-2"), 60_000, "the container to tick");
        const ck = podman("container", "checkpoint", "husk-ck");
        if (!vm) {
          expect(ck.status).not.toBe(0);
          expect(ck.stderr).toMatch(/runs on the local driver, which cannot checkpoint yet/);
          expect(podman("inspect", "--format", "{{.State.Status}}", "husk-ck").stdout.trim()).toBe("running");
        } else {
          expect(ck.status, ck.stderr).toBe(0);
          expect(podman("inspect", "--format", "{{.State.Status}}", "husk-ck").stdout.trim()).toBe("exited");
          const ticks = podman("logs", "husk-ck").stdout.split("\n").filter((l) => l.startsWith("tick-")).length;
          const restored = podman("container", "restore", "husk-ck");
          expect(restored.status, restored.stderr).toBe(0);
          expect(podman("inspect", "--format", "{{.State.Status}}", "husk-ck").stdout.trim()).toBe("running");
          expect(podman("exec", "husk-ck", "cat", "/tmp/w").stdout).toBe("kept\n");
          // The same shell goes on counting where it was saved.
          await until(() => podman("logs", "husk-ck").stdout.includes(`tick-${ticks + 3}`), 60_000, "the restored container to tick on");
          // Exported to a file, removed, and imported again (a move to
          // another host): podman writes the bundle anew, in its own order.
          const archive = join(work, "husk-ck.tar");
          const ex = podman("container", "checkpoint", "--print-stats", "--export", archive, "husk-ck");
          expect(ex.status, ex.stderr).toBe(0);
          expect(ex.stderr).toBe("");
          const figures = JSON.parse(ex.stdout).container_statistics[0].criu_statistics;
          expect(figures.pages_written).toBeGreaterThan(1000);
          expect(podman("rm", "-f", "husk-ck").status).toBe(0);
          const imported = podman("container", "restore", "--import", archive);
          expect(imported.status, imported.stderr).toBe(0);
          expect(podman("inspect", "--format", "{{.State.Status}}", "husk-ck").stdout.trim()).toBe("running");
          expect(podman("exec", "husk-ck", "cat", "/tmp/w", "/etc/hostname").stdout).toMatch(/^kept\n[0-9a-f]{12}\n?$/);
          const later = podman("logs", "husk-ck").stdout.split("\n").filter((l) => l.startsWith("tick-")).length;
          await until(() => podman("logs", "husk-ck").stdout.includes(`tick-${later + 3}`), 60_000, "the imported container to tick on");
          // The same file once more, under another name beside it: podman
          // gives it a new id, which the restored sandbox and agent take.
          const twin = podman("container", "restore", "--import", archive, "--name", "husk-ck2");
          expect(twin.status, twin.stderr).toBe(0);
          expect(podman("inspect", "--format", "{{.State.Status}}", "husk-ck2").stdout.trim()).toBe("running");
          expect(podman("exec", "husk-ck2", "cat", "/tmp/w").stdout).toBe("kept\n");
          expect(podman("rm", "-f", "--time", "0", "husk-ck2").status).toBe(0);
          expect(podman("exec", "husk-ck", "cat", "/tmp/w").stdout).toBe("kept\n");
        }
        expect(podman("rm", "-f", "--time", "0", "husk-ck").status).toBe(0);
        await noLeftovers();
      } finally {
        undo();
      }
    }, VM_TEST_MS);

    it("exec, stop and rm -f of a running container", async () => {
      const trap = "trap 'exit 0' TERM; while true; do sleep 0.1; done";
      const started = podman("run", "-d", "--name", "husk-s1", "--network", "none", image, "sh", "-c", trap);
      expect(started.status, started.stderr).toBe(0);
      const ex = podman("exec", "husk-s1", "sh", "-c", "echo from exec; exit 4");
      expect(ex.stdout).toBe("from exec\n");
      expect(ex.status).toBe(4);
      expect(podman("stop", "-t", "10", "husk-s1").status).toBe(0);
      // Stopped by TERM (the handler exits 0), not by the SIGKILL fallback (137).
      expect(podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "husk-s1").stdout.trim()).toBe("exited 0");
      expect(podman("rm", "-f", "husk-s1").status).toBe(0);
      podman("run", "-d", "--name", "husk-s2", "--network", "none", image, "sleep", "100");
      expect(podman("rm", "-f", "--time", "0", "husk-s2").status).toBe(0);
      await noLeftovers();
    }, VM_TEST_MS);
  });
});

describe("containerd (ctr --runc-binary husk)", () => {
  let containerd: Containerd;
  const ctr = (...args: string[]) => containerd.ctr(...args);

  beforeAll(async () => {
    containerd = await startContainerd({ dir: join(work, "containerd") });
    const imp = ctr("image", "import", busyboxOciTar(join(work, "img-ctr"), "localhost/husk-busybox:latest"));
    expect(imp.status, imp.stderr).toBe(0);
  });
  afterAll(() => containerd?.stop());

  describe.each(DRIVERS)("with the $driver driver", ({ driver, skip }) => {
    const vm = driver === "qemu";
    const it = test.skipIf(skip);
    const image = "localhost/husk-busybox:latest";
    const husk = ["--runc-binary", builtBinary()];
    let restoreDriver: () => void;
    beforeAll(() => {
      if (!skip) restoreDriver = installHostConfig(driverConfig(driver));
    }, 600_000);
    afterAll(async () => {
      if (skip) return;
      for (const id of ["husk-ctr3", "husk-ctr5", "husk-ctr6", "husk-ctr7"]) {
        ctr("task", "kill", "-s", "SIGKILL", id);
        ctr("task", "delete", "-f", id);
        ctr("container", "delete", id);
      }
      restoreDriver?.();
    }, 120_000);

    it("ctr run prints output and returns the exit status", () => {
      const r = ctr("run", "--rm", ...husk, image, "husk-ctr1", "sh", "-c", "echo hi from ctr; exit 4");
      expect(r.stdout).toBe("hi from ctr\n");
      expect(r.status).toBe(4);
    }, VM_TEST_MS);

    // A ctr command with -t under script(1), as typed at a shell: what the terminal showed.
    async function underScript(args: string[], what: string): Promise<string> {
      const cmd = ["ctr", "--address", containerd.socket, ...args].join(" ");
      // script's stdin stays open until the end (its end of file would end the session first).
      const child = spawn("script", ["-qec", `${cmd}; echo rc=$?`, "/dev/null"], { stdio: ["pipe", "pipe", "ignore"] });
      let out = "";
      child.stdout!.on("data", (c) => (out += c.toString()));
      try {
        await until(() => /rc=\d+/.test(out), VM_TEST_MS / 3, `${what} to end; it showed ${JSON.stringify(out)}`);
      } finally {
        child.stdin!.end();
        child.kill();
      }
      return out;
    }

    it("ctr run -t and ctr task exec -t give the process a terminal (under script, as from a shell)", async () => {
      const out = await underScript(["run", "--rm", "-t", ...husk, image, "husk-ctr2", "sh", "-c", "'tty; exit 3'"], "ctr run -t");
      // As with runc: the container's pty (\r\n) seen through script's own (\r again).
      expect(out).toMatch(/\/dev\/pts\/\d+\r\r?\nrc=3\r\n$/);
      const started = ctr("run", "-d", ...husk, image, "husk-ctr7", "sleep", "300");
      expect(started.status, started.stderr).toBe(0);
      try {
        const ex = await underScript(["task", "exec", "-t", "--exec-id", "t1", "husk-ctr7", "sh", "-c", "'tty; exit 5'"], "ctr task exec -t");
        expect(ex).toMatch(/\/dev\/pts\/\d+\r\r?\nrc=5\r\n$/);
      } finally {
        ctr("task", "kill", "-s", "SIGKILL", "husk-ctr7");
        ctr("task", "delete", "-f", "husk-ctr7");
        ctr("container", "delete", "husk-ctr7");
      }
    }, VM_TEST_MS);

    it("run --rm: --env and --cwd take effect, stdin reaches the process", () => {
      const args = ["--address", containerd.socket, "run", "--rm", "--env", "FOO=bar", "--cwd", "/tmp", ...husk, image, "husk-ctr4", "sh", "-c", "echo $FOO; pwd; head -n 1"]; // ctr never closes the process's stdin at its own end of file
      const r = run(["ctr", ...args], {}, "from stdin\n");
      expect([r.status, r.stdout], r.stderr).toEqual([0, "bar\n/tmp\nfrom stdin\n"]);
    }, VM_TEST_MS);

    it("run -d --log-uri: task exec --cwd --user, pause/resume, kill TERM reaches the handler (exit 7), delete", async () => {
      const log = join(work, `ctr5-${driver}.log`);
      const init = "trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.2; done";
      const started = ctr("run", "-d", "--log-uri", `file://${log}`, ...husk, image, "husk-ctr5", "sh", "-c", init);
      expect(started.status, started.stderr).toBe(0);
      await until(() => existsSync(log) && readFileSync(log, "utf8").includes("ready"), 60_000, "the container's output in the --log-uri file");
      const ex = ctr("task", "exec", "--exec-id", "e1", "--cwd", "/tmp", "--user", "1000", "husk-ctr5", "sh", "-c", "pwd; id -u");
      expect([ex.status, ex.stdout]).toEqual([0, "/tmp\n1000\n"]);
      const status = () => /husk-ctr5\s+\d+\s+(\S+)/.exec(ctr("task", "ls").stdout)?.[1];
      expect(ctr("task", "pause", "husk-ctr5").status).toBe(0);
      expect(status()).toBe("PAUSED");
      expect(ctr("task", "resume", "husk-ctr5").status).toBe(0);
      expect(status()).toBe("RUNNING");
      expect(ctr("task", "kill", "-s", "SIGTERM", "husk-ctr5").status).toBe(0);
      await until(() => status() === "STOPPED", 30_000, "the task to stop after TERM");
      expect(readFileSync(log, "utf8")).toContain("got-term");
      expect(ctr("task", "delete", "husk-ctr5").status).toBe(0);
      expect(ctr("container", "delete", "husk-ctr5").status).toBe(0);
    }, VM_TEST_MS);

    it("kill -a -s SIGKILL: the attached ctr run exits 137", async () => {
      const attached = spawn("ctr", ["--address", containerd.socket, "run", "--rm", ...husk, image, "husk-ctr6", "sleep", "300"], { stdio: "ignore" });
      const exited = new Promise<number | null>((r) => attached.on("exit", (code) => r(code)));
      await until(() => /husk-ctr6\s+\d+\s+RUNNING/.test(ctr("task", "ls").stdout), VM_TEST_MS - 30_000, "husk-ctr6 to run");
      expect(ctr("task", "kill", "-a", "-s", "SIGKILL", "husk-ctr6").status).toBe(0);
      expect(await exited).toBe(137);
    }, VM_TEST_MS);

    it("run -d, task exec, task ps lists the init pid, --memory-limit is the container's", () => {
      const started = ctr("run", "-d", "--memory-limit", String(64 * 1024 * 1024), ...husk, image, "husk-ctr3", "sleep", "300");
      expect(started.status, started.stderr).toBe(0);
      const ex = ctr("task", "exec", "--exec-id", "e1", "husk-ctr3", "sh", "-c", "echo from exec; exit 6");
      expect(ex.stdout).toBe("from exec\n");
      expect(ex.status).toBe(6);
      // The limit: inside the VM's container (its own cgroup v2); for runc on
      // this cgroup v1 host, at linux.cgroupsPath (ctr's spec mounts no cgroupfs).
      const limit = vm
        ? ctr("task", "exec", "--exec-id", "e2", "husk-ctr3", "cat", "/sys/fs/cgroup/memory.max").stdout.trim()
        : readFileSync("/sys/fs/cgroup/memory/default/husk-ctr3/memory.limit_in_bytes", "utf8").trim();
      expect(limit).toBe(String(64 * 1024 * 1024));
      // In a VM, the host cgroup at cgroupsPath holds the VM's host processes,
      // limited to the VM (64 MiB + 192 overhead) and the host side's 384 MiB.
      const hostCg = "/sys/fs/cgroup/memory/default/husk-ctr3";
      if (vm) expect(readFileSync(`${hostCg}/memory.limit_in_bytes`, "utf8").trim()).toBe(String((64 + 192 + 384) * 1024 * 1024));
      const initPid = /husk-ctr3\s+(\d+)/.exec(ctr("task", "ls").stdout)?.[1];
      expect(initPid).toBeDefined();
      expect(ctr("task", "ps", "husk-ctr3").stdout.split("\n").slice(1).map((l) => l.trim().split(/\s+/)[0])).toContain(initPid);
      expect(ctr("task", "kill", "-s", "SIGKILL", "husk-ctr3").status).toBe(0);
      expect(ctr("task", "delete", "-f", "husk-ctr3").status).toBe(0);
      expect(ctr("container", "delete", "husk-ctr3").status).toBe(0);
      expect(existsSync(hostCg)).toBe(false);
    }, VM_TEST_MS);
  });
});
