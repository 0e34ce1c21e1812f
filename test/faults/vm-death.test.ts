import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { vmEnv, vmSkipReason } from "../qemu/assets.ts";
import { isAlive } from "../../lib/core/index.ts";
import { DOC_FILE } from "../../lib/persist/index.ts";

// The bad day on the VM path: a process of the sandbox is SIGKILLed under
// running containers. The proxy holds nothing a new one cannot rebuild: the
// containers run on and the next call replaces it. The VMM or virtiofsd
// takes the containers with it: their shims (the pids podman and containerd
// wait on) exit as killed (137) within 2 s, `state` says stopped, and a plain
// `delete` cleans everything up. The agent in the guest is started again by
// init: the VM lives on, the containers it ran end as killed.

const skip = vmSkipReason();
if (skip) console.log(`test/faults/vm-death: skipped: ${skip}`);

const work = mkdtempSync(join(tmpdir(), "husk-vmdeath-"));
const TRAP = ["sh", "-c", "trap 'exit 7' TERM; echo started; while true; do sleep 0.2; done"];

interface Doc {
  vm: { vmm: { pid: number }; virtiofsd: { process: { pid: number } } };
  proxy: { process: { pid: number } };
  containers: { id: string; state: string; exitStatus?: number }[];
}

type Spec = { process: { args: string[] }; linux: { readonlyPaths?: string[] }; annotations?: Record<string, string> };

function bundle(name: string, pod?: string, edit: (s: Spec) => void = () => {}): string {
  const dir = makeBusyboxBundle(join(work, name), { args: TRAP });
  const spec = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Spec;
  if (pod) spec.annotations = { "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": pod };
  edit(spec);
  writeFileSync(join(dir, "config.json"), JSON.stringify(spec));
  return dir;
}

// A container cannot see the agent (a VM sandbox refuses the host's pid
// namespace): sysrq "i" has the guest's kernel SIGKILL every process but
// init, the agent among them.
const KILL_AGENT = "echo i > /proc/sysrq-trigger; sleep 60";

describe.skipIf(!!skip)("a host process of a VM sandbox dies (qemu, TCG)", () => {
  let cli: Cli;
  const doc = (sandbox: string): Doc => JSON.parse(readFileSync(join(cli.root, sandbox, DOC_FILE), "utf8"));
  const startIn = (id: string, pod?: string, edit?: (s: Spec) => void) => {
    const out = join(work, `${id}.out`);
    cli.ok(["create", "--bundle", bundle(id, pod, edit), id], { stdioFile: out });
    cli.ok(["start", id]);
    return until(() => cli.output(out).includes("started"), 60_000, `${id} to start`);
  };
  const shimsExitKilled = async (sandbox: string, ids: string[]) => {
    const shims = ids.map((id) => cli.state(id).pid);
    await until(() => shims.every((p) => !isAlive(p)), 2_000, "the shims to exit");
    for (const id of ids) expect(cli.state(id).status).toBe("stopped");
    expect(doc(sandbox).containers.map((c) => [c.id, c.state, c.exitStatus])).toEqual(ids.map((id) => [id, "stopped", 137]));
  };
  const deleteCleansUp = async (sandbox: string, ids: string[]) => {
    for (const id of [...ids].reverse()) cli.ok(["delete", id]);
    const dir = join(cli.root, sandbox);
    await until(() => processesUsing(dir).length === 0, 10_000, `the processes of sandbox ${sandbox} to exit`);
    expect(cli.leftovers()).not.toContain(sandbox);
  };

  beforeAll(async () => {
    cli = new Cli(vmEnv());
    await startIn("pod");
    await startIn("side", "pod");
    await startIn("fs");
  }, 600_000);
  afterAll(async () => {
    for (const id of ["side", "pod", "fs", "ag-kill", "ag-side", "ag-new", "ag", "px-side", "px", "sd"]) cli?.run(["delete", "--force", id]);
    await until(() => processesUsing(cli?.root ?? work).length === 0, 30_000, "VM processes to exit").catch(() => {});
  }, 120_000);

  test("the proxy: the containers run on, the next call replaces it, signals still reach them", async () => {
    await startIn("px");
    await startIn("px-side", "px");
    const before = doc("px").proxy.process.pid;
    const shims = ["px", "px-side"].map((id) => cli.state(id).pid);
    // The shims hand their stdio to the proxy; with it gone they relay by themselves.
    for (const p of shims) expect(readFileSync(`/proc/${p}/cmdline`, "utf8").split("\0")).toContain("--relay");
    process.kill(before, "SIGKILL");
    await Bun.sleep(2_000);
    expect(shims.every((p) => isAlive(p))).toBe(true);
    expect(readFileSync(join(cli.root, "px", "shim.log"), "utf8")).toContain("relaying by itself");
    expect(cli.ok(["exec", "px-side", "echo", "through a new proxy"])).toBe("through a new proxy\n");
    const after = doc("px").proxy.process.pid;
    expect(after).not.toBe(before);
    expect(isAlive(after)).toBe(true);
    expect(["px", "px-side"].map((id) => cli.state(id).status)).toEqual(["running", "running"]);
    // The shims' own waits went through the dead proxy: they reconnected.
    cli.ok(["kill", "px-side", "TERM"]);
    await until(() => cli.state("px-side").status === "stopped", 30_000, "px-side to stop after TERM");
    expect(doc("px").containers.find((c) => c.id === "px-side")?.exitStatus).toBe(7);
    cli.ok(["kill", "px", "TERM"]);
    await until(() => cli.state("px").status === "stopped", 30_000, "px to stop after TERM");
    await deleteCleansUp("px", ["px", "px-side"]);
  }, 240_000);

  test("a shim: its container runs on, state asks the agent, kill reaches it, delete cleans up", async () => {
    await startIn("sd");
    const shim = cli.state("sd").pid;
    process.kill(shim, "SIGKILL");
    await until(() => !isAlive(shim), 5_000, "the shim to die");
    expect(cli.state("sd").status).toBe("running");
    expect(cli.ok(["exec", "sd", "echo", "alive"])).toBe("alive\n");
    cli.ok(["kill", "sd", "TERM"]);
    await until(() => cli.state("sd").status === "stopped", 30_000, "sd to stop after TERM");
    await deleteCleansUp("sd", ["sd"]);
  }, 240_000);

  test("the VMM: every shim of the sandbox exits as killed (137) within 2 s; delete cleans up", async () => {
    process.kill(doc("pod").vm.vmm.pid, "SIGKILL");
    await shimsExitKilled("pod", ["pod", "side"]);
    await deleteCleansUp("pod", ["pod", "side"]);
  }, 120_000);

  test("virtiofsd: the same — the container's files are gone with it", async () => {
    process.kill(doc("fs").vm.virtiofsd.process.pid, "SIGKILL");
    await shimsExitKilled("fs", ["fs"]);
    await deleteCleansUp("fs", ["fs"]);
    expect(cli.leftovers()).toEqual([]);
  }, 120_000);

  test("the agent in the guest: init starts it again, the containers it ran end as killed (137), the sandbox takes new ones", async () => {
    await startIn("ag");
    await startIn("ag-side", "ag");
    const shims = ["ag", "ag-side"].map((id) => cli.state(id).pid);
    const vmm = doc("ag").vm.vmm.pid;
    const out = join(work, "ag-kill.out");
    const killsAll = (s: Spec) => {
      s.linux.readonlyPaths = s.linux.readonlyPaths?.filter((p) => p !== "/proc/sysrq-trigger");
      s.process.args = ["sh", "-c", KILL_AGENT];
    };
    cli.ok(["create", "--bundle", bundle("ag-kill", "ag", killsAll), "ag-kill"], { stdioFile: out });
    cli.ok(["start", "ag-kill"]);
    const t0 = Date.now();
    await until(() => shims.every((p) => !isAlive(p)), 120_000, "the shims to exit once the agent is back");
    console.log(`vm-death: the shims exited ${Date.now() - t0} ms after the agent-killing container started`);
    expect(readFileSync(join(cli.root, "ag", "console.log"), "utf8")).toContain("husk-init: restarting the agent");
    expect(isAlive(vmm), "the VM lives on").toBe(true);
    expect(doc("ag").containers.filter((c) => c.id !== "ag-kill").map((c) => [c.id, c.state, c.exitStatus])).toEqual([
      ["ag", "stopped", 137],
      ["ag-side", "stopped", 137],
    ]);
    for (const id of ["ag-kill", "ag-side"]) cli.ok(["delete", "--force", id]);
    await startIn("ag-new", "ag"); // the new agent runs containers in the same VM
    expect(doc("ag").vm.vmm.pid).toBe(vmm);
    expect(cli.ok(["exec", "ag-new", "echo", "hello"])).toBe("hello\n");
    cli.ok(["kill", "ag-new", "TERM"]);
    await until(() => cli.state("ag-new").status === "stopped", 30_000, "ag-new to stop");
    await deleteCleansUp("ag", ["ag", "ag-new"]);
  }, 300_000);
});
