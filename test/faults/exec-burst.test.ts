import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { builtBinary } from "../helpers/husk.ts";
import { vmEnv, vmSkipReason } from "../qemu/assets.ts";

// A burst of CLI calls on one sandbox: 64 execs at once (with ps and state
// among them) all return their own output and exit status, and the sandbox
// is fine after. In a default-sized VM (256 MiB) the agent admits runc calls
// as memory allows instead of letting the guest run out of it.

const skip = vmSkipReason();
if (skip) console.log(`test/faults/exec-burst (qemu): skipped: ${skip}`);

const BURST = 64;

// Async, unlike Cli.run: the calls must really be in flight together.
function husk(cli: Cli, args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(builtBinary(), ["--root", cli.root, ...args], {
      env: { PATH: process.env.PATH!, HUSK_CONFIG: "/dev/null", HUSK_HYPERVISOR: "local", ...cli.env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    child.on("close", (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

describe.each([
  { driver: "local", skip: false },
  { driver: "qemu", skip: !!skip },
])("$driver: a burst of calls on one container", ({ driver, skip }) => {
  let cli: Cli;
  beforeAll(() => {
    if (skip) return;
    cli = new Cli(driver === "qemu" ? vmEnv() : {});
    const bundle = makeBusyboxBundle(join(cli.root, "..", "bundle"), { args: ["sleep", "600"] });
    cli.ok(["create", "--bundle", bundle, "burst"], { stdioFile: cli.out });
    cli.ok(["start", "burst"]);
  }, 600_000);
  afterAll(async () => {
    if (!cli) return;
    cli.run(["delete", "--force", "burst"]);
    await until(() => processesUsing(cli.root).length === 0, 30_000, "the sandbox's processes to exit").catch(() => {});
  }, 60_000);

  test.skipIf(skip)(`${BURST} concurrent execs, with ps and state among them, each get their own output and status`, async () => {
    const execs = Array.from({ length: BURST }, (_, i) =>
      husk(cli, ["exec", "burst", "sh", "-c", `echo out-${i}; echo err-${i} >&2; exit ${i % 50}`]),
    );
    const others = Array.from({ length: 8 }, (_, i) => husk(cli, i % 2 ? ["ps", "--format", "json", "burst"] : ["state", "burst"]));
    const results = await Promise.all(execs);
    expect(results.map((r) => [r.status, r.stdout, r.stderr])).toEqual(results.map((_, i) => [i % 50, `out-${i}\n`, `err-${i}\n`]));
    for (const r of await Promise.all(others)) expect(r.stderr).toBe("");
    // The agent is alive and the container runs on.
    expect(cli.ok(["exec", "burst", "echo", "still here"])).toBe("still here\n");
    expect(cli.state("burst").status).toBe("running");
  }, 300_000);
});
