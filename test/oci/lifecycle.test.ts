import { describe, expect, test } from "vitest";
import { readlinkSync, writeFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { isAlive, validateId } from "../../lib/core/index.ts";

const bundle = (args: string[]) => makeBusyboxBundle(mkdtempSync(join(tmpdir(), "husk-bundle-")), { args });
const TRAP_TERM = ["sh", "-c", "trap 'echo got TERM; exit 7' TERM; echo started; while true; do sleep 0.1; done"];

describe("bare CLI lifecycle (local driver)", () => {
  test("create, start, exec, ps, pause/resume, kill, delete", async () => {
    const cli = new Cli();
    const b = bundle(TRAP_TERM);
    const pidFile = join(b, "pid");
    cli.ok(["create", "--bundle", b, "--pid-file", pidFile, "life"], { stdioFile: cli.out });

    const created = cli.state("life");
    expect(created.status).toBe("created");
    expect(created.pid).toBe(Number(readFileSync(pidFile, "utf8")));
    expect(isAlive(created.pid)).toBe(true);
    expect(created.bundle).toBe(b);
    expect(created.ociVersion).toMatch(/^1\./);

    cli.ok(["start", "life"]);
    expect(cli.state("life").status).toBe("running");
    await until(() => cli.output(cli.out).includes("started"), 10_000, "container output");

    // The container's processes live in a pid namespace of their own.
    const ns = cli.ok(["exec", "life", "readlink", "/proc/self/ns/pid"]).trim();
    expect(ns).toMatch(/^pid:\[\d+\]$/);
    expect(ns).not.toBe(readlinkSync("/proc/self/ns/pid"));
    const ex = cli.run(["exec", "life", "sh", "-c", "echo out; echo err >&2; exit 5"]);
    expect(ex.status).toBe(5);
    expect(ex.stdout).toBe("out\n");
    expect(ex.stderr).toBe("err\n");

    // ps as containerd's runc shim reads it: the pids published with --pid-file.
    const psJson = () => JSON.parse(cli.ok(["ps", "--format", "json", "life"])) as number[];
    expect(psJson()).toEqual([created.pid]);
    const execPidFile = join(b, "exec.pid");
    cli.ok(["exec", "--detach", "--pid-file", execPidFile, "life", "sleep", "30"], { stdioFile: cli.out });
    const execPid = Number(readFileSync(execPidFile, "utf8"));
    expect(psJson()).toEqual([created.pid, execPid]);
    // The table: PID holds those pids, beside each process's pid in the sandbox.
    const table = cli.ok(["ps", "life"]).split("\n");
    expect(table[0]).toMatch(/^PID {9}SANDBOX-PID {3}SANDBOX-PPID {3}CMD$/);
    expect(table.find((l) => l.startsWith(`${created.pid} `))).toMatch(/ sh -c trap /);
    expect(table.find((l) => l.startsWith(`${execPid} `))).toMatch(/ sleep 30$/);
    process.kill(execPid, "SIGTERM"); // the shim passes it on
    await until(() => psJson().length === 1, 10_000, "the exec to leave ps");

    cli.ok(["pause", "life"]);
    expect(cli.state("life").status).toBe("paused");
    cli.ok(["resume", "life"]);
    expect(cli.state("life").status).toBe("running");

    cli.ok(["kill", "life", "TERM"]);
    await until(() => cli.state("life").status === "stopped", 10_000, "stopped after TERM");
    expect(cli.output(cli.out)).toContain("got TERM");
    expect(isAlive(created.pid)).toBe(false);

    cli.ok(["delete", "life"]);
    expect(cli.run(["state", "life"]).status).not.toBe(0);
    expect(cli.leftovers()).toEqual([]);
    expect(cli.indexEntries()).toEqual([]); // the container index forgets deleted containers
    await until(() => processesUsing(cli.root).length === 0, 10_000, "shim and agent to exit");
  });

  test("run returns the exit code and list shows containers", () => {
    const cli = new Cli();
    const r = cli.run(["run", "--bundle", bundle(["sh", "-c", "echo ran; exit 3"]), "r1"]);
    expect(r.status).toBe(3);
    expect(r.stdout).toBe("ran\n");
    cli.ok(["create", "--bundle", bundle(["sleep", "30"]), "l1"], { stdioFile: cli.out });
    expect(cli.ok(["list", "--quiet"]).trim()).toBe("l1");
    const listed = JSON.parse(cli.ok(["list", "--format", "json"]));
    expect(listed.map((s: { id: string; status: string }) => [s.id, s.status])).toEqual([["l1", "created"]]);
    // runc's table: columns aligned with spaces (tabwriter: min 12, padding 3), no tabs.
    const pid = cli.state("l1").pid;
    const table = cli.ok(["list"]);
    expect(table).not.toContain("\t");
    const lines = table.split("\n");
    expect(lines[0]).toMatch(/^ID {10}PID {9}STATUS {6}BUNDLE +CREATED +OWNER$/);
    expect(lines[1]).toMatch(new RegExp(`^l1 {10}${pid} +created {5}\\S+ +\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z {3}root$`));
    expect(lines[0]!.indexOf("CREATED")).toBe(lines[1]!.search(/\d{4}-/));
    cli.ok(["delete", "--force", "l1"]);
    expect(cli.leftovers()).toEqual([]);
    expect(cli.indexEntries()).toEqual([]); // the container index forgets deleted containers
  });
});

describe("long-running containers", () => {
  test("output and exit status arrive after minutes-long silence (no idle cut-off)", async () => {
    const cli = new Cli();
    cli.ok(["create", "--bundle", bundle(["sh", "-c", "sleep 12; echo late; exit 7"]), "quiet"], { stdioFile: cli.out });
    cli.ok(["start", "quiet"]);
    await until(() => cli.state("quiet").status === "stopped", 30_000, "the container to stop");
    expect(cli.output(cli.out)).toBe("late\n");
    expect(JSON.parse(cli.ok(["inspect", "quiet"])).containers[0].exitStatus).toBe(7);
    cli.ok(["delete", "quiet"]);
  });
});

describe("errors as runc gives them", () => {
  const cli = new Cli();
  const expectError = (args: string[], pattern: RegExp) => {
    const r = cli.run(args);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(pattern);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  };

  test("unknown id", () => {
    for (const cmd of ["state", "start", "kill", "delete", "ps", "pause"])
      expectError([cmd, "nope"], /container nope does not exist/);
  });

  test("bad ids are refused before any path is built", () => {
    const b = bundle(["true"]);
    for (const id of ["a/b", "..", ".", "x".repeat(1025), "a b"]) expectError(["create", "-b", b, id], /invalid container id/);
    // NUL cannot travel in argv; the library refuses it the same way.
    expect(() => validateId("a\u0000b")).toThrow(/invalid container id/);
    expect(cli.leftovers()).toEqual([]);
    expect(cli.indexEntries()).toEqual([]); // the container index forgets deleted containers
  });

  test("duplicate id, start of a running container, delete of a running one", async () => {
    const b = bundle(["sleep", "30"]);
    cli.ok(["create", "-b", b, "dup"], { stdioFile: cli.out });
    expectError(["create", "-b", b, "dup"], /container with id dup already exists/);
    cli.ok(["start", "dup"]);
    expectError(["start", "dup"], /container dup is running: only a created container can be started/);
    expectError(["delete", "dup"], /container dup is running: stop it first or delete with force/);
    cli.ok(["delete", "--force", "dup"]);
    expect(cli.leftovers()).toEqual([]);
    expect(cli.indexEntries()).toEqual([]); // the container index forgets deleted containers
  });

  test("bad bundle path and invalid config.json name the problem", () => {
    expectError(["create", "-b", "/nonexistent/bundle", "bb1"], /bundle \/nonexistent\/bundle does not exist/);
    const b = bundle(["true"]);
    const spec = JSON.parse(readFileSync(join(b, "config.json"), "utf8"));
    spec.process.args = "not-a-list";
    writeFileSync(join(b, "config.json"), JSON.stringify(spec));
    expectError(["create", "-b", b, "bb2"], /config\.json: process\.args: /);
    writeFileSync(join(b, "config.json"), "{ broken");
    expectError(["create", "-b", b, "bb3"], /config\.json is not valid JSON/);
    expect(cli.leftovers()).toEqual([]);
    expect(cli.indexEntries()).toEqual([]); // the container index forgets deleted containers
  });

  test("--rootless true is refused; --systemd-cgroup is accepted (it names a VM's host cgroup)", () => {
    expectError(["--rootless", "true", "state", "x"], /rootless containers are not supported/);
    const r = cli.run(["--systemd-cgroup", "create", "-b", bundle(["true"]), "sd1"], { stdioFile: cli.out });
    expect(r.status).toBe(0);
    cli.ok(["delete", "--force", "sd1"]);
  });

  // The shim is only a hint of whether the container lives: the agent is asked.
  test("a container whose shim died is still running, can be signalled, and stops", async () => {
    const b = bundle(TRAP_TERM);
    cli.ok(["create", "-b", b, "orphan"], { stdioFile: cli.out });
    cli.ok(["start", "orphan"]);
    const shim = cli.state("orphan").pid;
    process.kill(shim, "SIGKILL");
    await until(() => !isAlive(shim), 5_000, "the shim to die");
    expect(cli.state("orphan").status).toBe("running");
    expect(cli.ok(["exec", "orphan", "echo", "alive"])).toBe("alive\n");
    cli.ok(["kill", "orphan", "KILL"]);
    await until(() => cli.state("orphan").status === "stopped", 10_000, "the container to stop after KILL");
    expectError(["kill", "orphan", "TERM"], /container orphan is stopped: it has no process to signal/);
    cli.ok(["delete", "orphan"]);
    expect(cli.leftovers()).toEqual([]);
  });

  // A container id is taken across sandboxes: a pod's container may not reuse
  // the id of another sandbox's container (found through the index, in O(1)).
  test("a pod container cannot take an id another sandbox holds", () => {
    cli.ok(["create", "-b", bundle(["sleep", "30"]), "podA"], { stdioFile: cli.out });
    cli.ok(["create", "-b", bundle(["sleep", "30"]), "other"], { stdioFile: cli.out });
    const joiner = bundle(["sleep", "30"]);
    const spec = JSON.parse(readFileSync(join(joiner, "config.json"), "utf8"));
    spec.annotations = { "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": "podA" };
    writeFileSync(join(joiner, "config.json"), JSON.stringify(spec));
    expectError(["create", "-b", joiner, "other"], /container with id other already exists/);
    cli.ok(["create", "-b", joiner, "podA-c2"], { stdioFile: cli.out });
    expect(cli.state("podA-c2").status).toBe("created");
    expect(cli.indexEntries().sort()).toEqual(["other", "podA", "podA-c2"]);
    for (const id of ["podA-c2", "podA", "other"]) cli.ok(["delete", "--force", id]);
    expect(cli.leftovers()).toEqual([]);
    expect(cli.indexEntries()).toEqual([]);
  });

  test("delete --force of a missing container succeeds, as with runc", () => {
    expect(cli.run(["delete", "--force", "never-was"]).status).toBe(0);
  });
});
