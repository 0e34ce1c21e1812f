import { afterAll, describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cli } from "../helpers/cli.ts";
import { builtBinary } from "../helpers/husk.ts";
import { busyboxSpec, makeBusyboxRootfs } from "../helpers/bundle.ts";
import { leakMark, noLeaks, settledLeaks } from "../helpers/leaks.ts";
import { loadBundle } from "../../lib/oci/index.ts";
import { openStore } from "../../lib/persist/index.ts";
import { guestView } from "../../lib/sandbox/rootfs.ts";
import { mountsUnder, removeTree } from "../../lib/sandbox/mounts.ts";

// Removal never follows a mount. A VM sandbox binds a container's rootfs and
// its bind mounts' sources into <sandbox>/shared (lib/sandbox/rootfs.ts
// guestView); the local driver makes no such binds, so these tests make them
// with that same function on a local sandbox's directory, under a --root with
// a space, a tab, a backslash, quotes and a 100-byte component (mountinfo
// writes those as \040, \011, \134). The bind source's files must survive
// delete --force, gc, and a delete or gc killed half-way.

const base = mkdtempSync(join(tmpdir(), "husk removal "));
const rootfs = makeBusyboxRootfs(join(base, "rootfs"));
const mounted: string[] = [];
afterAll(() => mounted.forEach((m) => spawnSync("umount", ["-l", m])));
let n = 0;

function userFiles(): string {
  const src = join(base, `user data ${++n}`);
  mkdirSync(join(src, "sub"), { recursive: true });
  writeFileSync(join(src, "precious.txt"), "keep me");
  writeFileSync(join(src, "sub", "deep.txt"), "keep me too");
  return src;
}

const survived = (src: string) =>
  existsSync(join(src, "precious.txt")) && readFileSync(join(src, "sub", "deep.txt"), "utf8") === "keep me too";

// A local sandbox with a rw bind mount, shared as a VM sandbox shares it.
function sandboxWithBind() {
  const root = join(base, `odd \t\\'"${n} ${"l".repeat(100)}`, "root");
  const id = `rm${n}-${process.pid}`;
  const src = userFiles();
  const bundle = join(base, `bundle${n}`);
  mkdirSync(bundle);
  const spec = busyboxSpec({ args: ["sleep", "60"] }, rootfs);
  spec.process!.env = [...spec.process!.env!, leakMark(root)];
  spec.mounts = [...spec.mounts!, { destination: "/data", type: "bind", source: src, options: ["rbind", "rw"] }];
  writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
  const cli = new Cli({}, root);
  cli.ok(["create", "--bundle", bundle, id], { stdioFile: cli.out });
  const store = openStore({ root });
  guestView(store.load(id), id, loadBundle(bundle), true);
  const binds = mountsUnder(join(root, id));
  mounted.push(...binds);
  expect(binds).toHaveLength(2); // the rootfs (read-only) and /data (rw)
  const data = binds.find((b) => /\/mounts\/\d+$/.test(b))!;
  expect(readFileSync(join(data, "precious.txt"), "utf8")).toBe("keep me"); // found through mountinfo's escapes
  return { cli, root, id, src, store };
}

const crashed = (root: string, args: string[], point: string) =>
  spawnSync(builtBinary(), ["--root", root, ...args], {
    env: { PATH: process.env.PATH!, HUSK_CONFIG: "/dev/null", HUSK_HYPERVISOR: "local", HUSK_TEST_CRASH_AT: point },
    stdio: "ignore",
    timeout: 60_000,
  }).signal;

describe("removal never follows a mount", () => {
  test("delete --force: the bind source's files survive, nothing is left", async () => {
    const { cli, root, id, src } = sandboxWithBind();
    cli.ok(["delete", "--force", id]);
    expect(survived(src)).toBe(true);
    expect(await settledLeaks(root, [id])).toEqual(noLeaks);
  });

  test("gc of a sandbox whose agent died: the files survive, nothing is left", async () => {
    const { cli, root, id, src, store } = sandboxWithBind();
    const vm = store.load(id).vm as { agent: { pid: number } };
    process.kill(vm.agent.pid, "SIGKILL");
    expect(JSON.parse(cli.ok(["gc", "--json"]))).toEqual([expect.objectContaining({ sandbox: id, removed: true })]);
    expect(survived(src)).toBe(true);
    expect(await settledLeaks(root, [id])).toEqual(noLeaks);
  });

  // Where a teardown may die (lib/sandbox/destroy-sandbox.ts, mounts.ts).
  const points = ["destroy:stopped", "destroy:unmounted", "destroy:removing", "destroy:removed"];

  test.each(points)("delete --force killed at %s, then gc and delete --force: the files survive, nothing is left", async (point) => {
    const { cli, root, id, src } = sandboxWithBind();
    expect(crashed(root, ["delete", "--force", id], point)).toBe("SIGKILL");
    expect(survived(src)).toBe(true);
    cli.ok(["gc"]);
    cli.ok(["delete", "--force", id]);
    expect(survived(src)).toBe(true);
    expect(await settledLeaks(root, [id])).toEqual(noLeaks);
  });

  test.each(points)("gc killed at %s with the binds still mounted, then gc: the files survive, nothing is left", async (point) => {
    const { cli, root, id, src, store } = sandboxWithBind();
    process.kill((store.load(id).vm as { agent: { pid: number } }).agent.pid, "SIGKILL");
    expect(crashed(root, ["gc"], point)).toBe("SIGKILL");
    expect(survived(src)).toBe(true);
    cli.ok(["gc"]);
    expect(survived(src)).toBe(true);
    expect(await settledLeaks(root, [id])).toEqual(noLeaks);
  });

  test("the removal walk refuses to cross a mount it is handed", () => {
    const src = userFiles();
    const dir = join(base, `walk ${n}\tx`);
    mkdirSync(join(dir, "a", "bound"), { recursive: true });
    writeFileSync(join(dir, "a", "file"), "x");
    expect(spawnSync("mount", ["--bind", src, join(dir, "a", "bound")]).status).toBe(0);
    mounted.push(join(dir, "a", "bound"));
    expect(() => removeTree(dir)).toThrow(`refusing to remove ${join(dir, "a", "bound")}: it is a mount point`);
    expect(survived(src)).toBe(true);
    spawnSync("umount", [join(dir, "a", "bound")]);
    removeTree(dir);
    expect(existsSync(dir)).toBe(false);
    expect(survived(src)).toBe(true);
  });
});
