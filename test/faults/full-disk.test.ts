import { afterAll, describe, expect, test, vi } from "vitest";
import { spawnSync } from "node:child_process";
import { closeSync, mkdirSync, mkdtempSync, openSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cli } from "../helpers/cli.ts";
import { busyboxSpec, makeBusyboxRootfs } from "../helpers/bundle.ts";
import { leakMark, noLeaks, settledLeaks } from "../helpers/leaks.ts";
import { loadSettings } from "../../lib/config/index.ts";
import { PersistError } from "../../lib/persist/index.ts";
import { log } from "../../lib/core/index.ts";
import { openContext } from "../../lib/sandbox/context.ts";
import { deleteContainer } from "../../lib/sandbox/delete.ts";

// A full disk under --root (a small tmpfs): create fails with one line that
// names the path and says so, leaving nothing; delete and gc still work,
// since removing needs no new bytes.

const base = mkdtempSync(join(tmpdir(), "husk full "));
const rootfs = makeBusyboxRootfs(join(base, "rootfs"));
const mounted: string[] = [];
afterAll(() => mounted.forEach((m) => spawnSync("umount", ["-l", m])));
let n = 0;

function fullDisk() {
  const mnt = join(base, `disk ${++n}`);
  mkdirSync(mnt);
  expect(spawnSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]).status).toBe(0);
  mounted.push(mnt);
  const root = join(mnt, "root");
  const bundle = join(base, `bundle${n}`);
  mkdirSync(bundle);
  const spec = busyboxSpec({ args: ["sleep", "60"] }, rootfs);
  spec.process!.env = [...spec.process!.env!, leakMark(root)];
  writeFileSync(join(bundle, "config.json"), JSON.stringify(spec));
  const fill = () => {
    const fd = openSync(join(mnt, "filler"), "a");
    try {
      const chunk = Buffer.alloc(64 * 1024, 1);
      for (;;) writeSync(fd, chunk);
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe("ENOSPC");
    } finally {
      closeSync(fd);
    }
    // the last partial pages too
    for (let i = 0; ; i++) {
      try {
        writeFileSync(join(mnt, `filler${i}`), "x");
      } catch {
        break;
      }
    }
  };
  return { cli: new Cli({}, root), root, bundle, fill };
}

const id = (s: string) => `${s}${n}-${process.pid}`;

describe("a full disk", () => {
  test("create fails with one line naming the path and 'no space left', leaving nothing", async () => {
    const { cli, root, bundle, fill } = fullDisk();
    cli.ok(["create", "--bundle", bundle, id("before")], { stdioFile: join(base, "out") }); // the root exists, with an index
    cli.ok(["delete", "--force", id("before")]);
    fill();
    const r = cli.run(["create", "--bundle", bundle, id("c")]);
    expect(r.status).not.toBe(0);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(root);
    expect(lines[0]).toMatch(/no space left on device/);
    expect(lines[0]).not.toMatch(/internal error|ENOSPC/);
    expect(await settledLeaks(root, [id("c")])).toEqual(noLeaks);
  });

  test("delete --force and gc still work on a full disk", async () => {
    const { cli, root, bundle, fill } = fullDisk();
    const [a, b] = [id("a"), id("b")];
    cli.ok(["create", "--bundle", bundle, a], { stdioFile: join(base, "out") });
    cli.ok(["create", "--bundle", bundle, b], { stdioFile: join(base, "out") });
    cli.ok(["start", a]);
    const dead = JSON.parse(cli.ok(["inspect", b])).vm.agent.pid as number;
    process.kill(dead, "SIGKILL");
    fill();
    const del = cli.run(["delete", "--force", a]);
    expect(del.stderr).not.toMatch(/internal error|ENOSPC/);
    expect(del.status).toBe(0);
    const gc = JSON.parse(cli.ok(["gc", "--json"]));
    expect(gc).toEqual([expect.objectContaining({ sandbox: b, removed: true })]);
    expect(await settledLeaks(root, [a, b])).toEqual(noLeaks);
  });

  test("a document update that cannot be written is skipped with a warning, and removal goes on", async () => {
    const { cli, root, bundle } = fullDisk();
    const c = id("w");
    cli.ok(["create", "--bundle", bundle, c], { stdioFile: join(base, "out") });
    const ctx = await openContext(loadSettings({ root, hypervisor: "local", configPath: "/dev/null" }, {}));
    // The store writes nothing while the sandbox is removed: every save hits a full disk.
    const enospc = Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write", path: join(root, c, "x.tmp") });
    const update = ctx.store.update.bind(ctx.store);
    ctx.store.update = (sandbox, fn) =>
      update(sandbox, async (d) => {
        await fn(d);
        throw new PersistError("io", `cannot write ${join(root, sandbox, "persist.json")} (sandbox ${sandbox}): no space left on device`, sandbox, undefined, enospc);
      });
    const notice = vi.spyOn(log, "notice").mockImplementation(() => {});
    let notices: string[];
    try {
      await deleteContainer(ctx, c, true);
    } finally {
      notices = notice.mock.calls.map((a) => a[0]);
      notice.mockRestore();
    }
    expect(notices).toEqual([
      expect.stringMatching(/^delete .*: cannot write .* no space left on device; the document was not updated, removal goes on$/),
    ]);
    expect(await settledLeaks(root, [c])).toEqual(noLeaks);
  });
});
