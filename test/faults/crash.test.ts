import { afterAll, describe, expect, test } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cli } from "../helpers/cli.ts";
import { builtBinary, killedAfter } from "../helpers/husk.ts";
import { busyboxSpec, makeBusyboxRootfs } from "../helpers/bundle.ts";
import { leakMark, noLeaks, settledLeaks } from "../helpers/leaks.ts";
import { writeFileSync } from "node:fs";

// A create killed at any point leaves a trace that `husk gc` and `delete
// --force` turn into nothing: no process, mount, socket alias, cgroup or file
// (local driver; crash-qemu.test.ts does the same for VM sandboxes, taps included). The root is long enough
// (a 100-byte component) that sockets go through a /run/husk-s alias.

const base = mkdtempSync(join(tmpdir(), "husk crash "));
const rootfs = makeBusyboxRootfs(join(base, "rootfs"));
let n = 0;
// A failed test still leaves nothing running.
const made: { cli: Cli; ids: string[] }[] = [];
afterAll(() => made.forEach(({ cli, ids }) => [...ids].reverse().forEach((id) => cli.run(["delete", "--force", id]))));

function setup(persist = "fs") {
  const root = join(base, `r${++n} ${"x".repeat(100)}`, "root");
  mkdirSync(join(root, ".."), { recursive: true });
  const id = `crash${n}-${process.pid}`;
  const bundle = join(base, `bundle${n}`);
  mkdirSync(bundle);
  const spec = busyboxSpec({ args: ["sleep", "60"] }, rootfs);
  spec.process!.env = [...spec.process!.env!, leakMark(root)];
  writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
  const cli = new Cli({ HUSK_PERSIST: persist }, root);
  made.push({ cli, ids: [id, `${id}-j`] });
  return { cli, root, id, bundle, persist };
}

const env = (root: string, extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH!, HUSK_CONFIG: "/dev/null", HUSK_HYPERVISOR: "local", ...extra,
});

// Where `husk create` may die (lib/sandbox/create-sandbox.ts, create.ts).
const BEFORE_RECORDED = ["create:saved-creating", "create:vm-started", "create:saved-vm", "create:agent-ready", "create:container-made", "create:shim-started"];

describe("a create killed at any point", () => {
  const cases = BEFORE_RECORDED.flatMap((p) => [[p, "fs"], [p, "sqlite"]]);
  test.each(cases)("killed at %s (%s store): gc removes everything", async (point, store) => {
    const { cli, root, id, bundle } = setup(store);
    const r = spawnSync(builtBinary(), ["--root", root, "create", "--bundle", bundle, id], {
      env: env(root, { HUSK_TEST_CRASH_AT: point, HUSK_PERSIST: store }), stdio: "ignore", timeout: 60_000,
    });
    expect(r.signal).toBe("SIGKILL");
    expect(cli.leftovers().filter((f) => !f.startsWith("persist.db"))).toEqual([id]); // the trace
    const gc = JSON.parse(cli.ok(["gc", "--json"])) as { sandbox: string; removed: boolean; reason: string }[];
    expect(gc).toEqual([expect.objectContaining({ sandbox: id, removed: true, reason: expect.stringMatching(/create crashed/) })]);
    expect(await settledLeaks(root, [id])).toEqual(noLeaks);
    cli.ok(["delete", "--force", id]); // nothing to do, and no error
    expect(await settledLeaks(root, [id])).toEqual(noLeaks);
  });

  test("killed after its last save: gc keeps the container, delete --force removes everything", async () => {
    const { cli, root, id, bundle } = setup();
    const r = spawnSync(builtBinary(), ["--root", root, "create", "--bundle", bundle, id], {
      env: env(root, { HUSK_TEST_CRASH_AT: "create:saved-created" }), stdio: "ignore", timeout: 60_000,
    });
    expect(r.signal).toBe("SIGKILL");
    expect(JSON.parse(cli.ok(["gc", "--json"]))).toEqual([]);
    expect(cli.state(id).status).toBe("created");
    cli.ok(["delete", "--force", id]);
    expect(await settledLeaks(root, [id])).toEqual(noLeaks);
  });

  test.each([50, 150, 300, 600, 1000])("killed %i ms in: gc and delete --force remove everything", async (ms) => {
    const { cli, root, id, bundle } = setup();
    await killedAfter(["--root", root, "create", "--bundle", bundle, id], env(root), ms);
    cli.ok(["gc"]);
    cli.ok(["delete", "--force", id]);
    expect(await settledLeaks(root, [id])).toEqual(noLeaks);
  });

  test("a directory left by a create that died inside its first save is removed by gc and by delete --force", async () => {
    const { cli, root, id } = setup();
    for (const clean of [["gc"], ["delete", "--force", id]]) {
      mkdirSync(join(root, id), { recursive: true });
      writeFileSync(join(root, id, "persist.lock"), "12345\n");
      writeFileSync(join(root, id, ".persist.json.12345.1.tmp"), "{");
      cli.ok(clean);
      expect(await settledLeaks(root, [id])).toEqual(noLeaks);
    }
  });

  test.each(["create:container-made", "create:shim-started"])("a container joining a pod, killed at %s: delete --force removes it, the pod lives on", async (point) => {
    const { cli, root, id: pod, bundle } = setup();
    cli.ok(["create", "--bundle", bundle, pod], { stdioFile: cli.out });
    const joiner = join(base, `joiner${n}`);
    mkdirSync(joiner);
    const spec = busyboxSpec({ args: ["sleep", "60"] }, rootfs);
    spec.process!.env = [...spec.process!.env!, leakMark(root)];
    spec.annotations = { "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": pod };
    writeFileSync(join(joiner, "config.json"), JSON.stringify(spec));
    const c = `${pod}-j`;
    const r = spawnSync(builtBinary(), ["--root", root, "create", "--bundle", joiner, c], {
      env: env(root, { HUSK_TEST_CRASH_AT: point }), stdio: "ignore", timeout: 60_000,
    });
    expect(r.signal).toBe("SIGKILL");
    expect(JSON.parse(cli.ok(["gc", "--json"]))).toEqual([]); // the pod is alive
    cli.ok(["delete", "--force", c]);
    expect(cli.state(pod).status).toBe("created");
    expect(cli.run(["state", c]).stderr).toMatch(/container .* does not exist/);
    cli.ok(["delete", "--force", pod]);
    expect(await settledLeaks(root, [pod, c])).toEqual(noLeaks);
  });

  test("gc run again and again during a create that is alive leaves it alone", async () => {
    const { cli, root, id, bundle } = setup();
    const child = spawn(builtBinary(), ["--root", root, "create", "--bundle", bundle, id], { env: env(root), stdio: "ignore" });
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    let done = false;
    exited.then(() => (done = true));
    let runs = 0;
    while (!done) {
      const gc = cli.run(["gc", "--json"]);
      expect(gc.status).toBe(0);
      expect(JSON.parse(gc.stdout)).toEqual([]);
      runs++;
      await Bun.sleep(10); // lets the child's exit be seen
    }
    expect(await exited).toBe(0);
    expect(runs).toBeGreaterThan(0);
    expect(cli.state(id).status).toBe("created");
    cli.ok(["delete", "--force", id]);
    expect(await settledLeaks(root, [id])).toEqual(noLeaks);
  });
});
