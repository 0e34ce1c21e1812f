import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { builtBinary } from "../helpers/husk.ts";
import { busyboxOciTar, busyboxRootfsTar } from "../helpers/images.ts";
import { installHostConfig } from "../helpers/host-config.ts";
import { processesUsing, until } from "../helpers/cli.ts";
import { TEST_GUEST_DIR, buildAssets, vmSkipReason } from "../qemu/assets.ts";

// Real clients driving husk unchanged: podman (conmon) and containerd (runc v2
// shim with --runc-binary). One file, run in order: both read /etc/husk/config.toml.

const work = mkdtempSync(join(tmpdir(), "husk-clients-"));
const huskRoot = join(work, "husk-root");
let restoreConfig: () => void;

function run(cmd: string[], env: Record<string, string> = {}) {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: "utf8", env: { ...process.env, ...env }, timeout: 120_000 });
  return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

beforeAll(() => {
  restoreConfig = installHostConfig(`hypervisor = "local"\nroot = "${huskRoot}"\n`);
});
afterAll(() => restoreConfig?.());

const noLeftovers = async () => {
  await until(() => processesUsing(huskRoot).length === 0, 15_000, "husk processes to exit");
  expect(existsSync(huskRoot) ? readdirSync(huskRoot) : []).toEqual([]);
};

describe("podman --runtime husk", () => {
  const env = {
    CONTAINERS_STORAGE_CONF: join(work, "storage.conf"),
    CONTAINERS_CONF: join(work, "containers.conf"),
  };
  const podman = (...args: string[]) => run(["podman", "--runtime", builtBinary(), ...args], env);
  const image = "localhost/husk-busybox:latest";

  beforeAll(() => {
    writeFileSync(env.CONTAINERS_STORAGE_CONF, `[storage]\ndriver = "vfs"\nrunroot = "${work}/pm-run"\ngraphroot = "${work}/pm-graph"\n`);
    // Podman's default rlimits (1048576) need CAP_SYS_RESOURCE, which we lack here.
    writeFileSync(env.CONTAINERS_CONF, `[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n`);
    const imp = run(["podman", "import", busyboxRootfsTar(join(work, "img-podman")), image], env);
    expect(imp.status, imp.stderr).toBe(0);
  });

  test("run --rm prints hello", async () => {
    const r = podman("run", "--rm", "--network", "none", image, "echo", "hello");
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("hello\n");
    expect(r.status).toBe(0);
    await noLeftovers();
  });

  test("the exit code reaches podman", () => {
    expect(podman("run", "--rm", "--network", "none", image, "sh", "-c", "exit 3").status).toBe(3);
  });

  test("-e and -w take effect", () => {
    const r = podman("run", "--rm", "--network", "none", "-e", "FOO=bar", "-w", "/tmp", image, "sh", "-c", "echo $FOO; pwd");
    expect(r.stdout).toBe("bar\n/tmp\n");
  });

  test("run -t and exec -t give the process a terminal (conmon's console socket)", async () => {
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
  });

  test("exec, stop and rm -f of a running container", async () => {
    const trap = "trap 'exit 0' TERM; while true; do sleep 0.1; done";
    const started = podman("run", "-d", "--name", "husk-s1", "--network", "none", image, "sh", "-c", trap);
    expect(started.status, started.stderr).toBe(0);
    const ex = podman("exec", "husk-s1", "sh", "-c", "echo from exec; exit 4");
    expect(ex.stdout).toBe("from exec\n");
    expect(ex.status).toBe(4);
    const t0 = Date.now();
    expect(podman("stop", "-t", "10", "husk-s1").status).toBe(0);
    expect(Date.now() - t0).toBeLessThan(8000); // stopped by TERM, not by the SIGKILL fallback
    expect(podman("inspect", "--format", "{{.State.Status}}", "husk-s1").stdout.trim()).toBe("exited");
    expect(podman("rm", "-f", "husk-s1").status).toBe(0);
    podman("run", "-d", "--name", "husk-s2", "--network", "none", image, "sleep", "100");
    expect(podman("rm", "-f", "--time", "0", "husk-s2").status).toBe(0);
    await noLeftovers();
  });
});

describe.skipIf(!!vmSkipReason())("podman --runtime husk with the qemu driver", () => {
  const env = {
    CONTAINERS_STORAGE_CONF: join(work, "storage.conf"),
    CONTAINERS_CONF: join(work, "containers.conf"),
  };
  let restoreVmConfig: () => void;
  beforeAll(() => {
    const r = buildAssets();
    if (r.status !== 0) throw new Error(`husk guest build failed: ${r.stderr}`);
    const version = /guest assets (\S+)/.exec(r.stdout)![1]!;
    restoreVmConfig = installHostConfig(
      `hypervisor = "qemu"\nroot = "${huskRoot}"\n[guest]\ndir = "${TEST_GUEST_DIR}"\nversion = "${version}"\n`,
    );
  }, 600_000);
  afterAll(() => restoreVmConfig?.());

  test("run --rm echo hello runs in the guest", async () => {
    const r = run(["podman", "--runtime", builtBinary(), "run", "--rm", "--network", "none", "localhost/husk-busybox:latest", "sh", "-c", "echo hello; uname -r"], env);
    expect(r.stderr).toBe("");
    const [hello, kernel] = r.stdout.trim().split("\n");
    expect(hello).toBe("hello");
    expect(kernel).not.toBe(release());
    expect(r.status).toBe(0);
    await until(() => processesUsing(huskRoot).length === 0, 20_000, "VM processes to exit");
  }, 300_000);
});

describe("containerd (ctr --runc-binary husk)", () => {
  const dir = join(work, "containerd");
  const sock = join(dir, "containerd.sock");
  let daemon: ChildProcess | undefined;
  const ctr = (...args: string[]) => run(["ctr", "--address", sock, ...args]);

  beforeAll(async () => {
    const config = join(work, "containerd.toml");
    writeFileSync(config, [
      "version = 2",
      `root = "${dir}/root"`,
      `state = "${dir}/state"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      "[grpc]", `  address = "${sock}"`,
      "[ttrpc]", `  address = "${sock}.ttrpc"`,
    ].join("\n"));
    daemon = spawn("containerd", ["--config", config], { stdio: "ignore" });
    await until(() => ctr("version").status === 0, 20_000, "containerd to answer");
    const imp = ctr("image", "import", busyboxOciTar(join(work, "img-ctr"), "localhost/husk-busybox:latest"));
    expect(imp.status, imp.stderr).toBe(0);
  });
  afterAll(async () => {
    daemon?.kill("SIGTERM");
    await until(() => daemon?.exitCode !== null || daemon?.signalCode !== null, 10_000, "containerd to stop").catch(() => daemon?.kill("SIGKILL"));
  });

  test("ctr run prints output and returns the exit status", () => {
    const r = ctr("run", "--rm", "--runc-binary", builtBinary(), "localhost/husk-busybox:latest", "husk-ctr1", "sh", "-c", "echo hi from ctr; exit 4");
    expect(r.stdout).toBe("hi from ctr\n");
    expect(r.status).toBe(4);
  });
});
