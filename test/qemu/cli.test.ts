import { beforeAll, describe, expect, test } from "vitest";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { release, tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { builtBinary } from "../helpers/husk.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { qemuEnv, vmSkipReason } from "./assets.ts";

const skip = vmSkipReason();
if (skip) console.log(`test/qemu/cli: skipped: ${skip}`);

const bundle = (args: string[], annotations?: Record<string, string>) => {
  const dir = makeBusyboxBundle(mkdtempSync(join(tmpdir(), "husk-vm-bundle-")), { args });
  if (annotations) {
    const spec = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...spec, annotations }));
  }
  return dir;
};

const mountsUnder = (root: string) =>
  readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => (l.split(" ")[4] ?? "").startsWith(root));

// Nothing of the sandbox left: no QEMU, virtiofsd, proxy or shim, no mount,
// no socket or directory (the KVM probe cache under <root>/qemu is shared).
async function expectNothingLeft(cli: Cli) {
  await until(() => processesUsing(cli.root).length === 0, 20_000, "VM processes to exit");
  expect(mountsUnder(cli.root)).toEqual([]);
  expect(cli.leftovers().filter((n) => n !== "qemu")).toEqual([]);
}

describe.skipIf(!!skip)("containers in QEMU micro-VMs through the CLI (TCG)", () => {
  let cli: Cli;
  beforeAll(() => {
    cli = new Cli(qemuEnv());
  }, 600_000);

  test("guest kernel, exit code, writes stay in the guest, exec, clean teardown", async () => {
    const b = bundle(["sh", "-c", "uname -r; echo from-vm > /written-in-vm; cat /written-in-vm; exit 3"]);
    const run = cli.run(["run", "--bundle", b, "vm-run"]);
    const lines = run.stdout.trim().split("\n");
    expect(run.stderr).toBe("");
    expect(lines[0]).toMatch(/^\d+\.\d+\.\d+/);
    expect(lines[0]).not.toBe(release()); // the guest's kernel, not the host's
    expect(lines[1]).toBe("from-vm");
    expect(run.status).toBe(3);
    expect(existsSync(join(b, "rootfs", "written-in-vm"))).toBe(false);
    await expectNothingLeft(cli);

    cli.ok(["create", "--bundle", bundle(["sh", "-c", "while true; do sleep 0.2; done"]), "vm-exec"], { stdioFile: cli.out });
    cli.ok(["start", "vm-exec"]);
    // A client that dies mid-stream (the proxy sees the call cancelled) leaves the sandbox usable.
    const streaming = spawn(builtBinary(), ["--root", cli.root, "exec", "vm-exec", "sh", "-c", "while true; do echo tick; sleep 0.1; done"], { env: { ...process.env, ...cli.env, HUSK_CONFIG: "/dev/null" }, stdio: ["ignore", "pipe", "ignore"] });
    await new Promise<void>((resolve) => streaming.stdout!.once("data", () => resolve()));
    streaming.kill("SIGKILL");
    const ex = cli.run(["exec", "vm-exec", "sh", "-c", "uname -r; exit 5"]);
    expect(ex.stdout.trim()).toBe(lines[0]);
    expect(ex.status).toBe(5);
    cli.ok(["delete", "--force", "vm-exec"]);
    await expectNothingLeft(cli);
  }, 300_000);

  test("two containers in one sandbox share the VM, not their writes", async () => {
    const loop = ["sh", "-c", "while true; do sleep 0.2; done"];
    cli.ok(["create", "--bundle", bundle(loop), "pod"], { stdioFile: cli.out });
    cli.ok(["start", "pod"]);
    const join2 = { "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "pod" };
    cli.ok(["create", "--bundle", bundle(loop, join2), "app"], { stdioFile: cli.out });
    cli.ok(["start", "app"]);
    expect(cli.leftovers().filter((n) => n !== "qemu")).toEqual(["pod"]); // one sandbox
    const bootId = (id: string) => cli.ok(["exec", id, "cat", "/proc/sys/kernel/random/boot_id"]).trim();
    expect(bootId("pod")).toMatch(/^[0-9a-f-]{36}$/);
    expect(bootId("app")).toBe(bootId("pod"));
    cli.ok(["exec", "pod", "touch", "/mine-pod"]);
    cli.ok(["exec", "app", "touch", "/mine-app"]);
    expect(cli.ok(["exec", "pod", "ls", "/"]).split("\n")).toContain("mine-pod");
    expect(cli.ok(["exec", "pod", "ls", "/"]).split("\n")).not.toContain("mine-app");
    expect(cli.ok(["exec", "app", "ls", "/"]).split("\n")).not.toContain("mine-pod");
    cli.ok(["delete", "--force", "app"]);
    expect(cli.state("pod").status).toBe("running");
    cli.ok(["delete", "--force", "pod"]);
    await expectNothingLeft(cli);
  }, 300_000);
});
