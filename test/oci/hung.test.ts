import { afterAll, describe, expect, test } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { builtBinary } from "../helpers/husk.ts";
import { qmp } from "../../lib/hypervisor/qemu/index.ts";
import { qemuEnv, vmSkipReason } from "../qemu/assets.ts";

// A guest that stops answering (its agent frozen, or the whole VM stopped)
// never holds the sandbox lock for good: calls made under the lock give up
// and say what timed out, and delete --force removes the sandbox anyway.

const vmSkip = vmSkipReason();
if (vmSkip) console.log(`test/oci/hung (qemu): skipped: ${vmSkip}`);

interface Doc {
  vm: { driver: string; agent?: { pid: number }; qmpSocket?: string };
}

// Freezes the agent: SIGSTOP for the local driver's process, QMP stop for a VM.
async function freeze(cli: Cli, id: string): Promise<void> {
  const doc = JSON.parse(cli.ok(["inspect", id])) as Doc;
  if (doc.vm.driver === "local") process.kill(doc.vm.agent!.pid, "SIGSTOP");
  else await qmp(doc.vm.qmpSocket!, [{ execute: "stop" }]);
}

describe.each([
  { driver: "local", skip: false },
  { driver: "qemu", skip: !!vmSkip },
])("a hung agent ($driver driver)", ({ driver, skip }) => {
  let cli: Cli;
  afterAll(async () => {
    if (!cli) return;
    cli.run(["delete", "--force", "hung"]);
    await until(() => processesUsing(cli.root).length === 0, 30_000, "sandbox processes to exit");
  }, 60_000);

  test.skipIf(skip)("pause gives up naming what timed out; delete --force, waiting behind it, removes everything", async () => {
    cli = new Cli(driver === "qemu" ? qemuEnv() : {});
    const b = makeBusyboxBundle(join(mkdtempSync(join(tmpdir(), "husk-hung-")), "bundle"), { args: ["sleep", "600"] });
    cli.ok(["create", "--bundle", b, "hung"], { stdioFile: cli.out });
    cli.ok(["start", "hung"]);
    await freeze(cli, "hung");

    // pause takes the sandbox lock and waits for the frozen agent ...
    const pause = spawn(builtBinary(), ["--root", cli.root, "pause", "hung"], {
      env: { PATH: process.env.PATH!, HUSK_CONFIG: "/dev/null", HUSK_HYPERVISOR: "local", ...cli.env },
    });
    let pauseErr = "";
    pause.stderr.on("data", (c) => (pauseErr += c.toString()));
    const paused = new Promise<number | null>((resolve) => pause.on("exit", (code) => resolve(code)));
    await until(() => /pause/.test(cli.output(`/proc/${pause.pid}/cmdline`)), 5000, "pause to run");
    await Bun.sleep(1000); // it holds the lock by now

    // ... and delete --force, behind it, still gets the lock and tears down.
    const del = cli.run(["delete", "--force", "hung"]);
    expect(del.stderr).toBe("");
    expect(del.status).toBe(0);
    expect(await paused).not.toBe(0);
    expect(pauseErr.trim()).toMatch(/^husk: pause hung: the agent of sandbox hung .*did not answer in time \(gave up after \d+ ms\)$/);
    await until(() => processesUsing(cli.root).length === 0, 30_000, "sandbox processes to exit");
    expect(cli.leftovers().filter((n) => n !== "qemu")).toEqual([]);
  }, 300_000);
});
