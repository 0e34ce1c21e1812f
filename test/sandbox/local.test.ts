import { describe, expect, test } from "vitest";
import { existsSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSettings } from "../../lib/config/index.ts";
import { Sandbox, openContext } from "../../lib/sandbox/index.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { processesUsing, until } from "../helpers/cli.ts";

// The Sandbox API end to end on the local driver: a real agent process and
// real runc containers from a busybox-static bundle.
describe("Sandbox API with the local driver", () => {
  test("create, output, exec, signal, exit status, delete — and nothing left behind", async () => {
    const dir = mkdtempSync(join(tmpdir(), "husk-api-"));
    const root = join(dir, "root");
    const ctx = await openContext(loadSettings({ root, hypervisor: "local", configPath: "/dev/null" }, {}));
    const sb = await Sandbox.create(ctx, { id: "api-sb" });
    expect(ctx.store.load("api-sb").agent?.capabilities).toContain("exec");

    const c = await sb.createContainer("c1", makeBusyboxBundle(join(dir, "b1"), {
      args: ["sh", "-c", "echo hello from c1; trap 'exit 3' USR1; while true; do sleep 0.1; done"],
    }));
    await c.start();
    const out = c.output()[Symbol.asyncIterator]();
    expect(new TextDecoder().decode((await out.next()).value!.data)).toBe("hello from c1\n");

    const p = await c.exec(["sh", "-c", "cat; echo done >&2; exit 4"]);
    await p.write("piped in\n");
    await p.closeStdin();
    const [text, code] = await Promise.all([p.text(), p.wait()]);
    expect(text).toBe("piped in\ndone\n");
    expect(code).toBe(4);

    await c.signal(10); // SIGUSR1: the trap exits 3
    expect(await c.wait()).toBe(3);

    const sleeper = await sb.createContainer("c2", makeBusyboxBundle(join(dir, "b2"), { args: ["sh", "-c", "exit 3"] }));
    await sleeper.start();
    expect(await sleeper.wait()).toBe(3);

    await sb.destroy();
    expect(existsSync(root) ? readdirSync(root) : []).toEqual([]);
    await until(() => processesUsing(root).length === 0, 10_000, "agent to exit");
  });
});
