import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { qemuEnv, vmSkipReason } from "./assets.ts";

// linux.resources inside the VM: the guest's runc applies them to a cgroup of
// the guest's own, the container sees its own limits at /sys/fs/cgroup, and
// running out of memory ends that container (137), not the agent or a sibling.

const skip = vmSkipReason();
if (skip) console.log(`test/qemu/limits: skipped: ${skip}`);

const POD = "limpod";
const MiB = 1024 * 1024;

function bundle(args: string[], resources: object, opts: { pod?: boolean; cgroupsPath?: string; tmpfs?: string; tmpfsSize?: string } = {}): string {
  const dir = makeBusyboxBundle(join(mkdtempSync(join(tmpdir(), "husk-limits-")), "bundle"), { args });
  const spec = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  spec.linux.resources = resources;
  // As containerd writes it with SystemdCgroup: a host path that means nothing in the guest.
  if (opts.cgroupsPath) spec.linux.cgroupsPath = opts.cgroupsPath;
  if (opts.tmpfs) spec.mounts.push({ destination: opts.tmpfs, type: "tmpfs", source: "tmpfs", options: [`size=${opts.tmpfsSize ?? "300m"}`] });
  if (opts.pod) spec.annotations = { "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": POD };
  writeFileSync(join(dir, "config.json"), JSON.stringify(spec));
  return dir;
}

describe.skipIf(!!skip)("resource limits in a QEMU VM (TCG)", () => {
  let cli: Cli;
  beforeAll(() => {
    cli = new Cli(qemuEnv());
    const limits = { memory: { limit: 64 * MiB }, pids: { limit: 50 }, cpu: { quota: 50_000, period: 100_000 } };
    const b = bundle(["sleep", "600"], limits, { cgroupsPath: "system.slice:cri-containerd:limpod" });
    cli.ok(["create", "--bundle", b, POD], { stdioFile: cli.out });
    cli.ok(["start", POD]);
  }, 600_000);
  afterAll(async () => {
    if (!cli) return;
    for (const id of ["oom", "big", "badcpu", "huge", POD]) cli.run(["delete", "--force", id]);
    await until(() => processesUsing(cli.root).length === 0, 30_000, "VM processes to exit");
  }, 120_000);

  test("the container sees its own memory, pids and cpu limits at /sys/fs/cgroup", () => {
    const out = cli.ok(["exec", POD, "sh", "-c", "cat /proc/self/cgroup /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max"]);
    expect(out.split("\n")).toEqual(["0::/", String(64 * MiB), "50", "50000 100000", ""]);
  }, 120_000);

  test("husk update changes the limits live in the guest: runc's flags, -r -, and a cpuset beyond the VM refused", () => {
    const read = () => cli.ok(["exec", POD, "cat", "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/cpu.max"]).split("\n");
    cli.ok(["update", "--memory", "96m", "--pids-limit", "20", POD]);
    expect(read()).toEqual([String(96 * MiB), "20", "50000 100000", ""]);
    cli.ok(["update", "-r", "-", POD], { input: JSON.stringify({ cpu: { quota: 20_000, period: 100_000 } }) });
    expect(read()).toEqual([String(96 * MiB), "20", "20000 100000", ""]);
    const r = cli.run(["update", "--cpuset-cpus", "0-1", POD]);
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim()).toMatch(/^husk: .*linux\.resources\.cpu\.cpus: CPU 1 is outside the VM's 1 vCPU \(0-0\)$/);
    cli.ok(["update", "--memory", "64m", POD]);
  }, 120_000);

  test("a container over its memory limit exits 137; the agent and its sibling live on", () => {
    // 200 MiB into a tmpfs: memory charged to the container that no reclaim can free.
    const fill = ["dd", "if=/dev/zero", "of=/big/fill", "bs=1M", "count=200"];
    const b = bundle(fill, { memory: { limit: 64 * MiB } }, { pod: true, tmpfs: "/big" });
    const r = cli.run(["run", "--bundle", b, "oom"]);
    expect(r.status).toBe(137);
    expect(cli.state(POD).status).toBe("running");
    expect(cli.ok(["exec", POD, "echo", "alive"])).toBe("alive\n");
  }, 180_000);

  test("a container limited to 1 GiB gets a VM it can use: 900 MiB fit", () => {
    const fill = ["sh", "-c", "dd if=/dev/zero of=/big/fill bs=1M count=900 2>/dev/null && du -m /big/fill"];
    const b = bundle(fill, { memory: { limit: 1024 * MiB } }, { tmpfs: "/big", tmpfsSize: "1000m" });
    const r = cli.run(["run", "--bundle", b, "big"]);
    expect(r.stdout).toBe("900\t/big/fill\n");
    expect(r.status).toBe(0);
  }, 300_000);

  test("what the VM cannot give is refused by field, and nothing of it is left", () => {
    const cases: [string, object, RegExp][] = [
      ["badcpu", { cpu: { cpus: "0-3" } }, /linux\.resources\.cpu\.cpus: CPU 1,2,3 is outside the VM's 1 vCPU \(0-0\)/],
      ["huge", { hugepageLimits: [{ pageSize: "2MB", limit: 2 * MiB }] }, /linux\.resources\.hugepageLimits: huge pages are not available/],
      ["iops", { blockIO: { throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 100 }] } }, /linux\.resources\.blockIO\.throttleWriteIOPSDevice: the host's block devices/],
    ];
    for (const [id, resources, message] of cases) {
      const r = cli.run(["create", "--bundle", bundle(["true"], resources, { pod: true }), id]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(cli.run(["state", id]).status).not.toBe(0);
    }
    expect(JSON.parse(cli.ok(["list", "--format", "json"])).map((s: { id: string }) => s.id)).toEqual([POD]);
  }, 180_000);
});
