import { afterAll, describe, expect, test } from "vitest";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { vmEnv, vmSkipReason } from "../qemu/assets.ts";

// Lifecycle hooks as the runtime-spec orders them: husk runs prestart,
// createRuntime, poststart and poststop itself on the host, for a VM sandbox
// and the local driver alike, with `husk state`'s view on their stdin (the
// user's bundle, the shim's pid). Where runc 1.1 departs from the spec (it
// runs poststart hooks within create, and a failing one fails it), husk
// follows the spec: poststart runs at start, a failure is a warning.

const work = mkdtempSync(join(tmpdir(), "husk-hooks-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// A hook that appends its kind to `order` and keeps the state it was given.
const recorder = (dir: string, kind: string, extra = "") => ({
  path: "/bin/sh",
  args: ["sh", "-c", `cat > ${dir}/${kind}.json; echo ${kind} >> ${dir}/order${extra}`],
});

function hookedBundle(name: string, hooks: Record<string, unknown[]>, args = ["sleep", "300"]): string {
  const b = makeBusyboxBundle(join(work, name), { args });
  const spec = JSON.parse(readFileSync(join(b, "config.json"), "utf8"));
  spec.hooks = hooks;
  spec.annotations = { "org.example.hooked": name };
  writeFileSync(join(b, "config.json"), JSON.stringify(spec));
  return b;
}

interface HookState {
  id: string;
  status: string;
  pid?: number;
  bundle: string;
  annotations?: Record<string, string>;
}

describe.each(["local", "qemu"] as const)("hooks with the %s driver", (driver) => {
  const skip = driver === "qemu" ? vmSkipReason() : undefined;
  const cliFor = () => {
    if (driver === "local") return new Cli();
    return new Cli(vmEnv());
  };

  test.skipIf(!!skip)("prestart, createRuntime, poststart, poststop run in order with the container's state", async () => {
    const cli = cliFor();
    const dir = join(work, `rec-${driver}`);
    mkdirSync(dir);
    const failing = { path: "/bin/sh", args: ["sh", "-c", "echo poststart says no >&2; exit 3"] };
    const b = hookedBundle(`life-${driver}`, {
      prestart: [recorder(dir, "prestart")],
      createRuntime: [recorder(dir, "createRuntime")],
      poststart: [failing, recorder(dir, "poststart")],
      poststop: [recorder(dir, "poststop")],
    });
    const id = `hk-${driver}`;
    try {
      await lifecycle(cli, dir, b, id);
    } finally {
      cli.run(["delete", "--force", id]); // whatever failed, no VM outlives the test
    }
    await until(() => processesUsing(cli.root).length === 0, 20_000, "nothing left running");
    expect(cli.leftovers().filter((n) => n !== "qemu")).toEqual([]);
  }, 300_000);

  async function lifecycle(cli: Cli, dir: string, b: string, id: string): Promise<void> {
    cli.ok(["create", "--bundle", b, id], { stdioFile: cli.out });
    const created = cli.state(id);
    expect(readFileSync(join(dir, "order"), "utf8")).toBe("prestart\ncreateRuntime\n");
    const started = cli.run(["start", id]);
    expect(started.status).toBe(0);
    expect(started.stderr).toMatch(/warning: hook poststart\[0\] \(\/bin\/sh\) exited with status 3: poststart says no/);
    await until(() => existsSync(join(dir, "poststart.json")), 20_000, "the poststart hook");
    cli.ok(["delete", "--force", id]);
    await until(() => existsSync(join(dir, "poststop.json")), 20_000, "the poststop hook");
    expect(readFileSync(join(dir, "order"), "utf8")).toBe("prestart\ncreateRuntime\npoststart\npoststop\n");

    const state = (kind: string) => JSON.parse(readFileSync(join(dir, `${kind}.json`), "utf8")) as HookState;
    for (const kind of ["prestart", "createRuntime", "poststart", "poststop"]) {
      expect(state(kind), kind).toMatchObject({ id, bundle: b, annotations: { "org.example.hooked": `life-${driver}` } });
    }
    expect(state("poststart").status).toBe("running");
    expect(state("poststop").status).toBe("stopped");
    expect(state("prestart").pid).toBeGreaterThan(0);
    // The pid a hook sees is the one husk reports (its shim's).
    for (const kind of ["prestart", "createRuntime", "poststart"]) expect(state(kind).pid, kind).toBe(created.pid);
  }

  test.skipIf(!!skip)("a prestart hook that outlives its timeout fails the create, which leaves nothing", async () => {
    const cli = cliFor();
    const b = hookedBundle(`slow-${driver}`, { prestart: [{ path: "/bin/sh", args: ["sh", "-c", "sleep 30"], timeout: 1 }] });
    const r = cli.run(["create", "--bundle", b, `slow-${driver}`], { stdioFile: cli.out });
    if (r.status === 0) cli.run(["delete", "--force", `slow-${driver}`]); // (a failure of the test must not leave a VM)
    expect(r.status).not.toBe(0);
    expect(cli.output(cli.out)).toContain("husk: hook prestart[0] (/bin/sh) did not finish within its timeout of 1 s");
    expect(cli.run(["state", `slow-${driver}`]).status).not.toBe(0);
    await until(() => processesUsing(cli.root).length === 0, 20_000, "nothing left running");
    expect(cli.leftovers().filter((n) => n !== "qemu")).toEqual([]);
  }, 300_000);
});

test("a hook whose path does not exist is refused by name before anything starts", () => {
  const cli = new Cli();
  const b = hookedBundle("missing", { poststop: [{ path: "/no/such/hook" }] });
  const r = cli.run(["create", "--bundle", b, "hk-missing"]);
  expect(r.stderr.trim()).toBe("husk: hooks.poststop[0].path: /no/such/hook does not exist");
  expect(existsSync(cli.root) ? readdirSync(cli.root) : []).toEqual([]);
});
