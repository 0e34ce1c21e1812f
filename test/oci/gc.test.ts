import { describe, expect, test } from "vitest";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { isAlive } from "../../lib/core/index.ts";

const bundle = (args: string[]) => makeBusyboxBundle(mkdtempSync(join(tmpdir(), "husk-gc-")), { args });

describe("husk gc", () => {
  test("removes sandboxes whose agent died or whose create crashed, keeps live ones", async () => {
    const cli = new Cli();
    cli.ok(["create", "--bundle", bundle(["sleep", "60"]), "alive"], { stdioFile: cli.out });
    cli.ok(["create", "--bundle", bundle(["sleep", "60"]), "crashed"], { stdioFile: cli.out });
    cli.ok(["start", "crashed"]);
    const crashed = JSON.parse(cli.ok(["inspect", "crashed"]));
    // The local driver's sandbox is the host: SANDBOX-PID is the container's host pid.
    const containerPids = cli.ok(["ps", "crashed"]).trim().split("\n").slice(1).map((l) => Number(l.split(/ +/)[1]));
    expect(containerPids.length).toBeGreaterThan(0);
    process.kill(crashed.hypervisor.pid, "SIGKILL"); // the agent dies with its sandbox's state on disk
    process.kill(crashed.containers[0].pid, "SIGKILL");
    // A create that died before it started anything (written as an old release would).
    const half = join(cli.root, "half");
    mkdirSync(half, { recursive: true });
    writeFileSync(join(half, "persist.json"), JSON.stringify({
      formatVersion: "1.0", id: "half", state: "creating", createdAt: "2026-01-01T00:00:00.000Z",
      createdBy: { version: "0.1.0", commit: "x" }, writtenBy: { version: "0.1.0", commit: "x" }, config: {}, containers: [],
    }));

    const dry = cli.ok(["gc", "--dry-run"]);
    expect(dry).toContain("kept crashed:");
    expect(cli.leftovers().sort()).toEqual(["alive", "crashed", "half"]);

    const out = JSON.parse(cli.ok(["gc", "--json"])) as { sandbox: string; removed: boolean; reason: string }[];
    expect(out.map((e) => [e.sandbox, e.removed]).sort()).toEqual([["crashed", true], ["half", true]]);
    expect(out.find((e) => e.sandbox === "crashed")!.reason).toMatch(/agent \(pid \d+\) is gone/);
    expect(cli.leftovers()).toEqual(["alive"]);
    // The crashed sandbox's container did not outlive it.
    await until(() => containerPids.every((p) => !isAlive(p)), 10_000, "orphaned container to be removed");
    expect(cli.state("alive").status).toBe("created");
    cli.ok(["delete", "--force", "alive"]);
    await until(() => processesUsing(cli.root).length === 0, 10_000, "processes to exit");
    expect(cli.leftovers()).toEqual([]);
  });
});
