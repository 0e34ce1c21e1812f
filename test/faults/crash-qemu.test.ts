import { afterAll, describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cli } from "../helpers/cli.ts";
import { builtBinary, killedAfter } from "../helpers/husk.ts";
import { busyboxSpec, makeBusyboxRootfs } from "../helpers/bundle.ts";
import { leakMark, noLeaks, settledLeaks } from "../helpers/leaks.ts";
import { vmEnv, vmSkipReason } from "../qemu/assets.ts";

// crash.test.ts on the VM path: a create killed at every point it records,
// or at a moment of the clock, leaves a trace that `husk gc` and `delete
// --force` turn into nothing — no QEMU, virtiofsd, proxy or shim, no mount,
// socket alias or file, and no tap or tc filter left in the client's netns
// (each sandbox is given one with a veth, as podman's CNI would).

const skip = vmSkipReason();
if (skip) console.log(`test/faults/crash-qemu: skipped: ${skip}`);

const base = mkdtempSync(join(tmpdir(), "husk crash-vm "));
const rootfs = makeBusyboxRootfs(join(base, "rootfs"));
const made: { cli: Cli; ids: string[]; netns: string }[] = [];
afterAll(() => {
  for (const { cli, ids, netns } of made) {
    [...ids].reverse().forEach((id) => cli.run(["delete", "--force", id]));
    spawnSync("ip", ["netns", "del", netns]);
  }
  rmSync(base, { recursive: true, force: true });
}, 120_000);

let n = 0;
function setup(annotations?: Record<string, string>) {
  const root = join(base, `r${++n} ${"x".repeat(100)}`, "root");
  mkdirSync(join(root, ".."), { recursive: true });
  const id = `vcrash${n}-${process.pid}`;
  const netns = `husk-vcrash${n}-${process.pid}`;
  expect(spawnSync("ip", ["netns", "add", netns]).status).toBe(0);
  expect(spawnSync("ip", ["-n", netns, "link", "add", "eth0", "type", "veth", "peer", "name", "peer0"]).status).toBe(0);
  const cli = new Cli(vmEnv(), root);
  made.push({ cli, ids: [id], netns });
  return { cli, root, id, netns, bundle: bundle(`b${n}`, root, netns, annotations) };
}

function bundle(name: string, root: string, netns: string, annotations?: Record<string, string>): string {
  const dir = join(base, name);
  mkdirSync(dir);
  const spec = busyboxSpec({ args: ["sleep", "60"] }, rootfs);
  spec.process!.env = [...spec.process!.env!, leakMark(root)];
  spec.linux!.namespaces = spec.linux!.namespaces!.map((x) => (x.type === "network" ? { type: "network", path: `/run/netns/${netns}` } : x));
  if (annotations) spec.annotations = annotations;
  writeFileSync(join(dir, "config.json"), JSON.stringify(spec));
  return dir;
}

function createKilledAt(root: string, bundleDir: string, id: string, point: string) {
  return spawnSync(builtBinary(), ["--root", root, "create", "--bundle", bundleDir, id], {
    env: { PATH: process.env.PATH!, HUSK_CONFIG: "/dev/null", ...vmEnv(), HUSK_TEST_CRASH_AT: point },
    stdio: "ignore",
    timeout: 180_000,
  });
}

const POINTS = ["create:saved-creating", "create:network-attached", "create:vm-started", "create:saved-vm", "create:agent-ready", "create:container-made", "create:shim-started"];

describe.skipIf(!!skip)("a VM sandbox's create killed at any point (qemu)", () => {
  test.each(POINTS)("killed at %s: gc removes everything, delete --force finds nothing to do", async (point) => {
    const { cli, root, id, netns, bundle } = setup();
    expect(createKilledAt(root, bundle, id, point).signal).toBe("SIGKILL");
    expect(cli.leftovers()).toContain(id); // the trace
    const gc = JSON.parse(cli.ok(["gc", "--json"])) as { sandbox: string; removed: boolean; reason: string }[];
    expect(gc).toEqual([expect.objectContaining({ sandbox: id, removed: true, reason: expect.stringMatching(/create crashed/) })]);
    expect(await settledLeaks(root, [id], 20_000, { netns })).toEqual(noLeaks);
    cli.ok(["delete", "--force", id]);
    expect(await settledLeaks(root, [id], 10_000, { netns })).toEqual(noLeaks);
  }, 240_000);

  test("killed after its last save: gc keeps the running VM, delete --force removes everything", async () => {
    const { cli, root, id, netns, bundle } = setup();
    expect(createKilledAt(root, bundle, id, "create:saved-created").signal).toBe("SIGKILL");
    expect(JSON.parse(cli.ok(["gc", "--json"]))).toEqual([]);
    expect(cli.state(id).status).toBe("created");
    cli.ok(["delete", "--force", id]);
    expect(await settledLeaks(root, [id], 20_000, { netns })).toEqual(noLeaks);
  }, 240_000);

  test.each([1500, 4000])("killed %i ms in: gc and delete --force remove everything", async (ms) => {
    const { cli, root, id, netns, bundle } = setup();
    await killedAfter(["--root", root, "create", "--bundle", bundle, id], { PATH: process.env.PATH!, HUSK_CONFIG: "/dev/null", ...vmEnv() }, ms);
    cli.ok(["gc"]);
    cli.ok(["delete", "--force", id]);
    expect(await settledLeaks(root, [id], 20_000, { netns })).toEqual(noLeaks);
  }, 240_000);
});
