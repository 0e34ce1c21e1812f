import { describe, expect, test } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSettings } from "../../lib/config/index.ts";
import { isAlive } from "../../lib/core/index.ts";
import { clhDriver } from "../../lib/hypervisor/clh/index.ts";
import { newSandboxDoc, type SandboxDoc } from "../../lib/persist/index.ts";
import { checkpointContainer, destroySandbox, openContext, restoreContainer } from "../../lib/sandbox/index.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { writeDoubleLauncher } from "../helpers/clh-double.ts";
import { processesUsing, until } from "../helpers/cli.ts";
import { writeVirtiofsdLauncher } from "./virtiofsd-standin.ts";

const mountsUnder = (dir: string) =>
  readFileSync("/proc/self/mountinfo", "utf8").split("\n").filter((l) => (l.split(" ")[4] ?? "").startsWith(dir));

// checkpoint and restore through the Sandbox API on the clh driver, against
// the spec-checked cloud-hypervisor double (no agent is called by either).
describe("checkpoint and restore of a clh sandbox", () => {
  test("the VM is saved, torn down, and comes back in a new VM with its containers and shares", async () => {
    const work = mkdtempSync(join(tmpdir(), "husk-clh-sb-"));
    const bin = join(work, "bin");
    const root = join(work, "root");
    const settings = {
      ...loadSettings({ root, hypervisor: "clh" }, { HUSK_CONFIG: "/dev/null" }),
      clhPath: writeDoubleLauncher(bin),
      virtiofsdPath: writeVirtiofsdLauncher(bin),
    };
    const ctx = await openContext(settings);
    writeFileSync(join(work, "vmlinux"), "kernel");
    writeFileSync(join(work, "initrd"), "initrd");
    const assets = { version: "g1", dir: work, kernel: join(work, "vmlinux"), initrd: join(work, "initrd"), cmdline: "console=ttyS0" };
    const bundle = makeBusyboxBundle(join(work, "bundle"), { args: ["sleep", "60"] });

    // A running clh sandbox holding one container, as create leaves it.
    const sharedDir = join(ctx.store.sandboxDir("cs1"), "shared");
    await ctx.store.create(newSandboxDoc({ id: "cs1", config: { cpus: 1, memoryMiB: 128, sharedDir } }));
    mkdirSync(sharedDir, { recursive: true });
    const vm = await clhDriver(settings).start({ sandboxId: "cs1", vmDir: ctx.store.sandboxDir("cs1"), sharedDir, cpus: 1, memoryMiB: 128, assets });
    await ctx.store.update("cs1", (d) => {
      d.vm = vm;
      d.agent = { channel: { kind: "unix", path: join(work, "none.sock") }, version: "0.1.0", protocolVersion: "1", capabilities: ["containers", "exec"] };
      d.containers.push({ id: "c1", bundle, rootfs: join(bundle, "rootfs"), state: "running", createdAt: new Date().toISOString() });
      d.state = "running";
    });

    const image = join(work, "image");
    await checkpointContainer(ctx, "c1", { imagePath: image });
    const paused = ctx.store.load("cs1");
    expect(paused.state).toBe("paused");
    expect(paused.containers[0]!.state).toBe("paused");
    expect(paused.snapshots?.map((x) => [x.driver, x.path])).toEqual([["clh", image]]);
    // What 0.1.0 reads of the same snapshot (persist format 1.0).
    expect((paused.hypervisor!.extra as { lastSnapshot?: { path: string } }).lastSnapshot?.path).toBe(image);
    expect(existsSync(join(image, "husk-sandbox.json"))).toBe(true);
    expect(existsSync(join(image, "husk-snapshot.json"))).toBe(true);

    await destroySandbox(ctx, "cs1", { force: true });
    expect(isAlive(vm.vmm?.pid)).toBe(false);
    expect(ctx.store.tryLoad("cs1")).toBeUndefined();

    await restoreContainer(ctx, "c1", { imagePath: image });
    const back = ctx.store.load("cs1");
    expect(back.state).toBe("running");
    expect(back.containers.map((c) => [c.id, c.state])).toEqual([["c1", "running"]]);
    expect(back.agent?.capabilities).toEqual(["containers", "exec"]); // the same agent carries on
    const backVm = back.vm as typeof vm;
    expect(backVm.vmm?.pid).not.toBe(vm.vmm?.pid);
    expect(isAlive(backVm.vmm?.pid, backVm.vmm?.startTime)).toBe(true);
    expect(back.hypervisor?.pid).toBe(backVm.vmm?.pid); // and what 0.1.0 reads
    expect(mountsUnder(sharedDir).length).toBeGreaterThan(1); // the shared dir and the rootfs bind

    await expect(restoreContainer(ctx, "c1", { imagePath: image })).rejects.toThrow(/sandbox cs1 exists; delete it before restoring/);
    await destroySandbox(ctx, "cs1", { force: true });
    expect(mountsUnder(root)).toEqual([]);
    await until(() => processesUsing(root).length === 0, 10_000, "VMM, virtiofsd and proxy to exit");
  }, 120_000);

  test("drivers without snapshots say so", async () => {
    const root = mkdtempSync(join(tmpdir(), "husk-clh-sb2-"));
    const ctx = await openContext(loadSettings({ root, hypervisor: "local" }, { HUSK_CONFIG: "/dev/null" }));
    await ctx.store.create(newSandboxDoc({
      id: "l1",
      vm: { driver: "local", dir: root, socket: "/x" },
      containers: [{ id: "l1", bundle: "/b", rootfs: "/b/rootfs", state: "running", createdAt: new Date().toISOString() }],
    }));
    await expect(checkpointContainer(ctx, "l1", { imagePath: join(root, "img") })).rejects.toThrow(/local driver, which cannot checkpoint yet; the qemu driver can \(--hypervisor qemu\), the clh driver can/);
  });
});
