import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { vmEnv, vmSkipReason } from "./assets.ts";
import { hostCgroupPath } from "../../lib/cgroups/index.ts";
import { DOC_FILE } from "../../lib/persist/index.ts";

// What kubelet and podman expect of a VM sandbox on the host: its host
// processes (QEMU, virtiofsd, the proxy, every shim) sit in the cgroup named
// by the first container's linux.cgroupsPath, limited to what the VM needs,
// and the cgroup goes with the sandbox.

const skip = vmSkipReason();
if (skip) console.log(`test/qemu/host-cgroup: skipped: ${skip}`);

const MiB = 1024 * 1024;
const CG = "/sys/fs/cgroup";
const PARENT = `husk-test-${process.pid}`;
const work = mkdtempSync(join(tmpdir(), "husk-hostcg-"));

// The hierarchies this host mounts (v1 controllers, hybrid's unified, or v2).
const HIERARCHIES = readdirSync(CG).filter((h) => existsSync(join(CG, h, "cgroup.procs")));
const procsIn = (h: string, path: string) => readFileSync(join(CG, h, path, "cgroup.procs"), "utf8").trim().split("\n").filter(Boolean).map(Number);

function bundle(name: string, opts: { cgroupsPath: string; memory?: number; pod?: string }): string {
  const dir = makeBusyboxBundle(join(work, name), { args: ["sleep", "600"] });
  const spec = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  spec.linux.cgroupsPath = opts.cgroupsPath;
  if (opts.memory) spec.linux.resources = { memory: { limit: opts.memory } };
  if (opts.pod) spec.annotations = { "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": opts.pod };
  writeFileSync(join(dir, "config.json"), JSON.stringify(spec));
  return dir;
}

test("cgroupsPath as runc reads it: cgroupfs paths, systemd slice:prefix:name, bad paths refused by name", () => {
  expect(hostCgroupPath("/kubepods/pod1/c1", false)).toEqual({ path: "/kubepods/pod1/c1", relative: false });
  expect(hostCgroupPath("libpod/x", false)).toEqual({ path: "libpod/x", relative: true });
  expect(hostCgroupPath("kubepods-burstable-pod1.slice:cri-containerd:abc", true).path).toBe(
    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-abc.scope",
  );
  expect(hostCgroupPath(":husk:abc", true).path).toBe("/system.slice/husk-abc.scope");
  expect(() => hostCgroupPath("/a/../b", false)).toThrow(/linux\.cgroupsPath "\/a\/\.\.\/b": "\." and "\.\." are not allowed/);
  expect(() => hostCgroupPath("/k8s.io/abc", true)).toThrow(/with --systemd-cgroup it must be "slice:prefix:name"/);
  expect(() => hostCgroupPath("bad:x:y", true)).toThrow(/"bad" is not a systemd slice name/);
});

describe.skipIf(!!skip)("a VM sandbox's host cgroup (qemu, TCG)", () => {
  let cli: Cli;
  const path = `/${PARENT}/pod1`;
  beforeAll(() => {
    cli = new Cli(vmEnv());
    cli.ok(["create", "--bundle", bundle("pod1", { cgroupsPath: path, memory: 64 * MiB }), "pod1"], { stdioFile: cli.out });
    cli.ok(["start", "pod1"]);
    cli.ok(["create", "--bundle", bundle("c2", { cgroupsPath: `/${PARENT}/c2`, pod: "pod1" }), "c2"], { stdioFile: join(work, "c2.out") });
  }, 600_000);
  afterAll(async () => {
    for (const id of ["c2", "pod1", "bad1"]) cli?.run(["delete", "--force", id]);
    await until(() => processesUsing(cli?.root ?? work).length === 0, 30_000, "VM processes to exit").catch(() => {});
    for (const h of HIERARCHIES) for (const d of [`${PARENT}/pod1`, PARENT]) if (existsSync(join(CG, h, d))) rmdirSync(join(CG, h, d));
  }, 120_000);

  test("QEMU, virtiofsd, the proxy and both shims are in it, in every hierarchy", () => {
    const doc = JSON.parse(readFileSync(join(cli.root, "pod1", DOC_FILE), "utf8"));
    const expected = [doc.vm.vmm.pid, doc.vm.virtiofsd.process.pid, doc.proxy.process.pid, cli.state("pod1").pid, cli.state("c2").pid];
    for (const pid of expected) expect(pid).toBeGreaterThan(1);
    for (const h of HIERARCHIES) expect(procsIn(h, path), `${h}`).toEqual(expect.arrayContaining(expected));
    // The joined container's own cgroupsPath is not made: the sandbox's is where its shim went.
    for (const h of HIERARCHIES) expect(existsSync(join(CG, h, PARENT, "c2"))).toBe(false);
    expect(doc.hostCgroup.path).toBe(path);
  });

  test("its memory limit is the VM's memory (64 MiB limit + 192 overhead) and the host side's 384 MiB", () => {
    const limit = (256 + 384) * MiB;
    const v1 = join(CG, "memory", path, "memory.limit_in_bytes");
    const v2 = join(CG, path, "memory.max");
    expect(Number(readFileSync(existsSync(v1) ? v1 : v2, "utf8"))).toBe(limit);
  });

  test("delete removes it from every hierarchy (the parent, not husk's, stays)", async () => {
    cli.ok(["delete", "--force", "c2"]);
    cli.ok(["delete", "--force", "pod1"]);
    await until(() => processesUsing(cli.root).length === 0, 30_000, "VM processes to exit");
    for (const h of HIERARCHIES) {
      expect(existsSync(join(CG, h, path)), `${h}${path}`).toBe(false);
      expect(existsSync(join(CG, h, PARENT)), `${h}/${PARENT}`).toBe(true);
    }
    expect(cli.leftovers()).toEqual([]);
  }, 120_000);

  test("a cgroupsPath that is not slice:prefix:name under --systemd-cgroup: one line naming it, nothing made", () => {
    const r = cli.run(["--systemd-cgroup", "create", "--bundle", bundle("bad1", { cgroupsPath: `/${PARENT}/bad1` }), "bad1"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim()).toBe(`husk: linux.cgroupsPath "/${PARENT}/bad1": with --systemd-cgroup it must be "slice:prefix:name"`);
    for (const h of HIERARCHIES) expect(existsSync(join(CG, h, PARENT, "bad1"))).toBe(false);
    expect(cli.leftovers()).toEqual([]);
    expect(processesUsing(cli.root)).toEqual([]);
  }, 60_000);
});
