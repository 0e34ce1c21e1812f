import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Engine, type OutputBuffer } from "../../lib/agent/index.ts";
import { HuskError, isAlive } from "../../lib/core/index.ts";
import { busyboxSpec, makeBusyboxBundle, makeBusyboxRootfs } from "../helpers/bundle.ts";

// These run real containers: they need root, runc and busybox-static
// (.ci/setup installs both). A missing runc fails the suite, it never skips.

const decoder = new TextDecoder();

async function readAll(out: OutputBuffer): Promise<string> {
  let text = "";
  for await (const chunk of out) text += decoder.decode(chunk, { stream: true });
  return text;
}

// Reads until `pattern` shows up (a terminal's output never ends while its shell lives).
async function readUntil(out: OutputBuffer, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  let text = "";
  const deadline = Date.now() + timeoutMs;
  while (!pattern.test(text)) {
    const chunk = await Promise.race([out.read(), Bun.sleep(deadline - Date.now()).then(() => "timeout" as const)]);
    if (chunk === "timeout") throw new Error(`no ${pattern} within ${timeoutMs} ms; got ${JSON.stringify(text)}`);
    if (chunk === null) throw new Error(`output ended before ${pattern}; got ${JSON.stringify(text)}`);
    text += decoder.decode(chunk);
  }
  return text;
}

function filesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) found.push(...filesUnder(p));
    else found.push(p);
  }
  return found;
}

const mountsUnder = (dir: string) =>
  readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .filter((l) => (l.split(" ")[4] ?? "").startsWith(dir));

// cgroup v1 freezer (this host); cgroup v2 keeps it in cgroup.freeze.
function freezerState(pid: number): string {
  const line = readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n").find((l) => /:freezer:/.test(l));
  if (line) return readFileSync(`/sys/fs/cgroup/freezer${line.split(":")[2]}/freezer.state`, "utf8").trim();
  const v2 = readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n").find((l) => l.startsWith("0::"))!;
  return readFileSync(`/sys/fs/cgroup${v2.slice(3)}/cgroup.freeze`, "utf8").trim() === "1" ? "FROZEN" : "THAWED";
}

let work: string;
let engine: Engine;
let bundle: string;
const seenPids = new Set<number>();

beforeAll(async () => {
  const runc = spawnSync("runc", ["--version"], { encoding: "utf8" });
  if (runc.status !== 0) throw new Error("runc is not installed: these tests need it (bash .ci/setup installs runc and busybox-static)");
  if (process.getuid?.() !== 0) throw new Error("the engine tests need root to run containers");
  work = mkdtempSync("/tmp/husk-engine-");
  engine = await Engine.open({ stateDir: join(work, "state") });
  bundle = makeBusyboxBundle(join(work, "bundle"), { args: ["sh", "-c", "echo hello; exec sleep 300"] });
});

// Zombies whose parent is this process: orphans reparented to us and never reaped.
function zombieChildren(): number[] {
  const found: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (state === "Z" && Number(ppid) === process.pid) found.push(Number(name));
    } catch {
      // gone while we looked
    }
  }
  return found;
}

afterAll(async () => {
  await engine?.close();
  if (work) rmSync(work, { recursive: true, force: true });
  await Bun.sleep(100); // let Bun reap its own runc children
  expect(zombieChildren()).toEqual([]);
});

describe("container lifecycle", () => {
  it("runs, execs, signals, waits, lists, pauses, measures and deletes a busybox container", async () => {
    const created = await engine.create("life", { bundle });
    expect(created.status).toBe("created");
    seenPids.add(created.pid);
    await engine.start("life");
    expect(engine.state("life").status).toBe("running");
    expect(await readUntil(engine.output("life", undefined, "stdout"), /hello\n/)).toBe("hello\n");

    const echo = await engine.exec("life", { args: ["sh", "-c", "echo second; echo oops >&2"] });
    expect((await engine.wait("life", echo)).exitCode).toBe(0);
    expect(await readAll(engine.output("life", echo, "stdout"))).toBe("second\n");
    expect(await readAll(engine.output("life", echo, "stderr"))).toBe("oops\n");

    const sleeper = await engine.exec("life", { args: ["sleep", "300"] });
    const three = await engine.exec("life", { args: ["sh", "-c", "exit 3"] });
    expect((await engine.wait("life", three)).exitCode).toBe(3);

    const pids = await engine.ps("life");
    pids.forEach((p) => seenPids.add(p));
    expect(pids).toContain(created.pid);
    const cmdlines = pids.map((p) => readFileSync(`/proc/${p}/cmdline`, "utf8").replaceAll("\0", " ").trim());
    expect(cmdlines.sort()).toEqual(["sleep 300", "sleep 300"]); // init and the sleeping exec; the finished ones are gone

    await engine.pause("life");
    expect(engine.state("life").status).toBe("paused");
    await expect(engine.exec("life", { args: ["true"] })).rejects.toThrow(
      "container life is paused: exec needs a created or running container",
    );
    expect(freezerState(created.pid)).toBe("FROZEN");
    await engine.resume("life");
    expect(engine.state("life").status).toBe("running");
    expect(freezerState(created.pid)).toBe("THAWED");

    const stats = await engine.stats("life");
    expect(stats.memoryBytes).toBeGreaterThan(0);
    expect(stats.cpuUsageNs).toBeGreaterThan(0);
    expect(stats.pids).toBe(2);

    await engine.signal("life", "TERM", { execId: sleeper });
    const killed = await engine.wait("life", sleeper);
    expect(killed).toMatchObject({ exitCode: 143, signal: 15 });
    await expect(engine.signal("life", "TERM", { execId: sleeper })).rejects.toThrow(/has exited/);

    await expect(engine.delete("life")).rejects.toThrow(/running: stop it first or delete with force/);
    await engine.signal("life", "KILL");
    expect((await engine.wait("life")).exitCode).toBe(137);
    expect(engine.state("life").status).toBe("stopped");
    await engine.delete("life");

    expect(() => engine.state("life")).toThrow(/does not exist/);
    for (const pid of seenPids) expect(isAlive(pid), `pid ${pid} still alive`).toBe(false);
    expect(readdirSync(join(engine.stateDir, "runc"))).toEqual([]);
    expect(filesUnder(engine.stateDir)).toEqual([]);
  });

  it("reports the init's exit code and deletes a stopped container without force", async () => {
    const b = makeBusyboxBundle(join(work, "exit3"), { args: ["sh", "-c", "exit 3"] });
    await engine.create("exit3", { bundle: b });
    await engine.start("exit3");
    expect((await engine.wait("exit3")).exitCode).toBe(3);
    await expect(engine.exec("exit3", { args: ["true"] })).rejects.toThrow(/exit3 is stopped: exec needs a created or running/);
    await expect(engine.start("exit3")).rejects.toThrow("container exit3 is stopped: only a created container can be started");
    await engine.delete("exit3");
    expect(filesUnder(engine.stateDir)).toEqual([]);
  });

  it("force-deletes a running and a paused container, leaving no process behind", async () => {
    for (const [id, pause] of [["forced", false], ["frozen", true]] as const) {
      const { pid } = await engine.create(id, { bundle });
      await engine.start(id);
      const exec = await engine.exec(id, { args: ["sleep", "300"] });
      const execPid = (await engine.ps(id)).find((p) => p !== pid)!;
      if (pause) await engine.pause(id);
      await engine.delete(id, { force: true });
      expect(isAlive(pid)).toBe(false);
      expect(isAlive(execPid)).toBe(false);
      expect(() => engine.wait(id, exec)).toThrow(/does not exist/);
    }
    expect(readdirSync(join(engine.stateDir, "runc"))).toEqual([]);
    expect(filesUnder(engine.stateDir)).toEqual([]);
  });
});

describe("rename", () => {
  // A checkpoint restored under another name: the container answers to the
  // new id for every operation, the old one is free, and nothing is left.
  it("gives a live container a new id that start, exec, ps, signal, wait and delete use", async () => {
    const { pid } = await engine.create("before", { bundle });
    await engine.rename("before", "after");
    expect(() => engine.state("before")).toThrow(/does not exist/);
    await engine.start("after");
    const ex = await engine.exec("after", { args: ["echo", "renamed"] });
    expect(await readAll(engine.output("after", ex, "stdout"))).toBe("renamed\n");
    expect(await engine.ps("after")).toContain(pid);
    const other = await engine.create("other", { bundle });
    await expect(engine.rename("after", "other")).rejects.toThrow("container other already exists");
    await expect(engine.rename("after", "a/b")).rejects.toThrow(HuskError);
    await engine.delete("other", { force: true });
    await engine.signal("after", "KILL");
    expect((await engine.wait("after")).exitCode).toBe(137);
    await engine.delete("after");
    expect(isAlive(pid) || isAlive(other.pid)).toBe(false);
    expect(readdirSync(join(engine.stateDir, "runc"))).toEqual([]);
    expect(filesUnder(engine.stateDir)).toEqual([]);
  });
});

describe("runtime choice", () => {
  it("reads statistics from the cgroup when the runtime has no events command", async () => {
    // A runtime like crun: everything runc does, but no `events`.
    const wrapper = join(work, "no-events-runtime");
    writeFileSync(wrapper, '#!/bin/sh\nfor a; do [ "$a" = events ] && { echo "unknown command events" >&2; exit 1; }; done\nexec runc "$@"\n', { mode: 0o755 });
    const other = await Engine.open({ stateDir: join(work, "wrapped"), runtime: wrapper });
    try {
      await other.create("cg", { bundle });
      await other.start("cg");
      await other.exec("cg", { args: ["sleep", "300"] });
      const stats = await other.stats("cg");
      expect(stats.memoryBytes).toBeGreaterThan(0);
      expect(stats.cpuUsageNs).toBeGreaterThan(0);
      expect(stats.pids).toBe(2);
    } finally {
      await other.close();
    }
  });

  it("names a runtime binary that does not exist", async () => {
    await expect(Engine.open({ stateDir: join(work, "missing-runtime"), runtime: join(work, "no-such-runc") })).rejects.toThrow(
      /cannot run OCI runtime .*no-such-runc/,
    );
  });
});

describe("reaping", () => {
  it("gives each of many concurrent execs its own exit status and output", async () => {
    await engine.create("many", { bundle });
    await engine.start("many");
    const codes = Array.from({ length: 8 }, (_, i) => i * 7 + 1);
    const execs = await Promise.all(codes.map((n) => engine.exec("many", { args: ["sh", "-c", `echo ${n}; exit ${n}`] })));
    const results = await Promise.all(execs.map((x) => engine.wait("many", x)));
    expect(results.map((r) => r.exitCode)).toEqual(codes);
    const outputs = await Promise.all(execs.map((x) => readAll(engine.output("many", x, "stdout"))));
    expect(outputs).toEqual(codes.map((n) => `${n}\n`));
    await engine.delete("many", { force: true });
  });
});

describe("exec records", () => {
  it("forgets an exec once its status and output were collected and a grace passed; unread output keeps it", async () => {
    const short = await Engine.open({ stateDir: join(work, "grace"), execGraceMs: 300 });
    try {
      await short.create("grace", { bundle });
      await short.start("grace");
      const read = await short.exec("grace", { args: ["echo", "read"] });
      const unread = await short.exec("grace", { args: ["echo", "unread"] });
      expect((await short.wait("grace", read)).exitCode).toBe(0);
      expect(await readAll(short.output("grace", read, "stdout"))).toBe("read\n");
      expect(await readAll(short.output("grace", read, "stderr"))).toBe("");
      expect((await short.wait("grace", unread)).exitCode).toBe(0);
      // Asked again within the grace (a shim that reconnected): still there.
      expect((await short.wait("grace", read)).exitCode).toBe(0);
      await Bun.sleep(1000);
      expect(() => short.wait("grace", read)).toThrow(/exec "[^"]+" does not exist in container grace/);
      expect(await readAll(short.output("grace", unread, "stdout"))).toBe("unread\n");
      await readAll(short.output("grace", unread, "stderr"));
      await Bun.sleep(1000);
      expect(() => short.wait("grace", unread)).toThrow(/does not exist/);
      // The container's own process is never forgotten.
      expect(short.state("grace").status).toBe("running");
      await short.delete("grace", { force: true });
    } finally {
      await short.close();
    }
  });
});

describe("several engines on one host", () => {
  it("keeps containers of the same id apart (ps, cgroups)", async () => {
    const other = await Engine.open({ stateDir: join(work, "neighbour") });
    try {
      const mine = await engine.create("same", { bundle });
      const theirs = await other.create("same", { bundle });
      await engine.start("same");
      await other.start("same");
      expect(await engine.ps("same")).toEqual([mine.pid]);
      expect(await other.ps("same")).toEqual([theirs.pid]);
      const cgroupOf = (pid: number) => readFileSync(`/proc/${pid}/cgroup`, "utf8");
      expect(cgroupOf(mine.pid)).not.toEqual(cgroupOf(theirs.pid));
      await other.delete("same", { force: true });
      expect(engine.state("same").status).toBe("running");
      await engine.delete("same", { force: true });
    } finally {
      await other.close();
    }
  });
});

describe("restart", () => {
  it("clears what an earlier engine on the same state dir left behind", async () => {
    const dir = join(work, "restarted");
    const first = await Engine.open({ stateDir: dir });
    const lower = makeBusyboxRootfs(join(work, "restart-lower"));
    const { pid } = await first.create("left", { spec: busyboxSpec({ args: ["sleep", "300"] }), rootfs: { kind: "overlay", lower } });
    await first.start("left");
    const second = await Engine.open({ stateDir: dir }); // as after an agent crash
    expect(isAlive(pid)).toBe(false);
    expect(readdirSync(join(dir, "runc"))).toEqual([]);
    expect(mountsUnder(realpathSync(dir))).toEqual([]);
    expect(filesUnder(dir)).toEqual([]);
    expect(second.list()).toEqual([]);
    await first.wait("left"); // the crashed engine's stand-in still reaps its child
  });
});

describe("stdio", () => {
  it("keeps output written while nobody reads, and hands the rest to a later reader", async () => {
    await engine.create("buffered", { bundle });
    await engine.start("buffered");
    const big = await engine.exec("buffered", { args: ["head", "-c", "200000", "/dev/zero"] });
    expect((await engine.wait("buffered", big)).exitCode).toBe(0); // finished with nobody reading
    expect((await readAll(engine.output("buffered", big, "stdout"))).length).toBe(200_000);

    const two = await engine.exec("buffered", { args: ["sh", "-c", "echo one; sleep 0.3; echo two"] });
    for await (const chunk of engine.output("buffered", two, "stdout")) {
      expect(decoder.decode(chunk)).toBe("one\n");
      break; // a client that goes away mid-stream
    }
    // A reader whose client disconnects while it waits takes nothing with it.
    const gone = new AbortController();
    const abandoned = engine.output("buffered", two, "stdout").read(undefined, gone.signal);
    gone.abort();
    await expect(abandoned).rejects.toThrow();
    await engine.wait("buffered", two);
    expect(await readAll(engine.output("buffered", two, "stdout"))).toBe("two\n");
    await engine.delete("buffered", { force: true });
  });

  it("makes a writer wait once the buffer bound is reached, losing nothing", async () => {
    const small = await Engine.open({ stateDir: join(work, "small"), outputLimit: 16 * 1024 });
    try {
      await small.create("bounded", { bundle });
      await small.start("bounded");
      const flood = await small.exec("bounded", { args: ["head", "-c", "1000000", "/dev/zero"] });
      const early = await Promise.race([small.wait("bounded", flood), Bun.sleep(700).then(() => "still writing")]);
      expect(early).toBe("still writing");
      const out = small.output("bounded", flood, "stdout");
      expect(out.buffered).toBeLessThan(16 * 1024 + 128 * 1024); // the bound plus one read
      expect((await readAll(out)).length).toBe(1_000_000);
      expect((await small.wait("bounded", flood)).exitCode).toBe(0);
    } finally {
      await small.close();
    }
  });

  it("feeds stdin and delivers end of file on close", async () => {
    await engine.create("stdin", { bundle });
    await engine.start("stdin");
    const cat = await engine.exec("stdin", { args: ["sh", "-c", "wc -c; echo done"] });
    expect(await engine.writeStdin("stdin", cat, new TextEncoder().encode("12345"))).toBe(5);
    await engine.writeStdin("stdin", cat, new Uint8Array(100_000));
    await engine.closeStdin("stdin", cat);
    expect((await engine.wait("stdin", cat)).exitCode).toBe(0);
    expect((await readAll(engine.output("stdin", cat, "stdout"))).replace(/\s+/g, " ").trim()).toBe("100005 done");
    await expect(engine.writeStdin("stdin", cat, new Uint8Array(1))).rejects.toThrow(/closed/);
    await engine.delete("stdin", { force: true });
  });
});

describe("terminals", () => {
  it("gives an exec a pty that tty names", async () => {
    await engine.create("tty-exec", { bundle });
    await engine.start("tty-exec");
    const t = await engine.exec("tty-exec", { args: ["tty"], terminal: true });
    expect((await engine.wait("tty-exec", t)).exitCode).toBe(0);
    expect(await readAll(engine.output("tty-exec", t, "stdout"))).toMatch(/^\/dev\/pts\/\d+\r\n$/);

    const cat = await engine.exec("tty-exec", { args: ["cat"], terminal: true });
    await engine.writeStdin("tty-exec", cat, new TextEncoder().encode("typed\n"));
    expect(await readUntil(engine.output("tty-exec", cat, "stdout"), /typed\r\n.*typed\r\n/s)).toBe("typed\r\ntyped\r\n");
    expect(() => engine.removeExec("tty-exec", cat)).toThrow(/still running/);
    await engine.closeStdin("tty-exec", cat); // end of file on a terminal: ^D
    expect((await engine.wait("tty-exec", cat)).exitCode).toBe(0);
    engine.removeExec("tty-exec", cat);
    expect(engine.state("tty-exec").execs).toEqual([t]);
    await engine.delete("tty-exec", { force: true });
  });

  it("runs an interactive shell as init on a terminal, with resize", async () => {
    const tb = makeBusyboxBundle(join(work, "tty-bundle"), { args: ["sh"], terminal: true });
    const created = await engine.create("tty-init", { bundle: tb });
    expect(created.terminal).toBe(true);
    await engine.start("tty-init");
    const out = engine.output("tty-init", undefined, "stdout");
    engine.resize("tty-init", undefined, { width: 100, height: 40 });
    const say = (s: string) => engine.writeStdin("tty-init", undefined, new TextEncoder().encode(s));
    await say("tty; busybox stty size; echo mark$((6*7))\n");
    const text = await readUntil(out, /mark42/);
    expect(text).toMatch(/\/dev\/pts\/\d+/);
    expect(text).toMatch(/40 100/);
    await say("exit 4\n");
    expect((await engine.wait("tty-init")).exitCode).toBe(4);
    await engine.delete("tty-init");
    expect(() => engine.resize("tty-exec", undefined, { width: 1, height: 1 })).toThrow(/does not exist/);
  });

  it("refuses to resize a process without a terminal", async () => {
    await engine.create("no-tty", { bundle });
    expect(() => engine.resize("no-tty", undefined, { width: 80, height: 24 })).toThrow(/has no terminal/);
    await engine.delete("no-tty");
  });
});

describe("rootfs descriptions", () => {
  it("runs from a spec and a plain rootfs path", async () => {
    const rootfs = makeBusyboxRootfs(join(work, "plain-rootfs"));
    const spec = busyboxSpec({ args: ["sh", "-c", "hostname; pwd"], cwd: "/tmp" });
    await engine.create("plain", { spec, rootfs: { kind: "path", path: rootfs } });
    await engine.start("plain");
    expect((await engine.wait("plain")).exitCode).toBe(0);
    expect(await readAll(engine.output("plain", undefined, "stdout"))).toBe("busybox\n/tmp\n");
    await engine.delete("plain");
  });

  it("mounts an overlay whose writes never reach the read-only lower, and unmounts it on delete", async () => {
    const lower = makeBusyboxRootfs(join(work, "lower"));
    const spec = busyboxSpec({ args: ["sh", "-c", "echo hi > /written && rm /etc/group && cat /written && ls /etc"] });
    const state = await engine.create("overlay", { spec, rootfs: { kind: "overlay", lower, tmpfsSize: "16m" } });
    expect(state.rootfs.startsWith(engine.stateDir)).toBe(true);
    expect(mountsUnder(engine.stateDir).length).toBe(2);
    await engine.start("overlay");
    expect((await engine.wait("overlay")).exitCode).toBe(0);
    expect(await readAll(engine.output("overlay", undefined, "stdout"))).toBe("hi\npasswd\n");
    expect(existsSync(join(lower, "written"))).toBe(false);
    expect(existsSync(join(lower, "etc", "group"))).toBe(true);
    await engine.delete("overlay");
    expect(mountsUnder(engine.stateDir)).toEqual([]);
    expect(filesUnder(engine.stateDir)).toEqual([]);
  });
});

describe("bad input", () => {
  it("names the unknown container or exec", async () => {
    await expect(engine.start("nope")).rejects.toThrow(/container "nope" does not exist/);
    expect(() => engine.state("nope")).toThrow(HuskError);
    await expect(engine.exec("nope", { args: ["true"] })).rejects.toThrow(/does not exist/);
    await engine.create("known", { bundle });
    expect(() => engine.wait("known", "exec-99")).toThrow(/exec "exec-99" does not exist in container known/);
    // As runc does, an exec may join a container that is created but not started.
    const early = await engine.exec("known", { args: ["true"] });
    expect((await engine.wait("known", early)).exitCode).toBe(0);
    await engine.delete("known");
  });

  it("explains an exec that cannot start and forgets it", async () => {
    await engine.create("badexec", { bundle });
    await engine.start("badexec");
    await expect(engine.exec("badexec", { args: ["/no/such/program"] })).rejects.toThrow(
      /cannot exec exec-1 in container badexec: .*\/no\/such\/program.*no such file/,
    );
    await expect(engine.exec("badexec", { args: [] })).rejects.toThrow(/invalid exec options for container badexec: args/);
    expect(engine.state("badexec").execs).toEqual([]);
    await engine.delete("badexec", { force: true });
    expect(filesUnder(engine.stateDir)).toEqual([]);
  });

  it("refuses a duplicate id, a bad id and a bad signal", async () => {
    await engine.create("dup", { bundle });
    await expect(engine.create("dup", { bundle })).rejects.toThrow(/container dup already exists/);
    await expect(engine.create("../escape", { bundle })).rejects.toThrow(/invalid container id/);
    await expect(engine.signal("dup", "NOTASIGNAL")).rejects.toThrow(/unknown signal "NOTASIGNAL"/);
    await engine.delete("dup");
  });

  it("rejects a spec that fails validation and leaves nothing behind", async () => {
    const spec = { ...busyboxSpec({ args: ["true"] }), ociVersion: "banana" };
    await expect(engine.create("badspec", { spec, rootfs: { kind: "path", path: join(bundle, "rootfs") } })).rejects.toThrow(
      /invalid options for container badspec: spec.ociVersion/,
    );
    const noArgs = { ...busyboxSpec({ args: [] }) };
    await expect(engine.create("noargs", { spec: noArgs, rootfs: { kind: "path", path: join(bundle, "rootfs") } })).rejects.toThrow(
      /process.args/,
    );
    await expect(engine.create("norootfs", { spec: busyboxSpec({ args: ["true"] }), rootfs: { kind: "path", path: join(work, "missing") } })).rejects.toThrow(
      /rootfs .*missing/,
    );
    await expect(engine.create("nobundle", { bundle: join(work, "missing") })).rejects.toThrow(/bundle .* does not exist/);
    expect(filesUnder(engine.stateDir)).toEqual([]);
  });

  it("passes on the runtime's own reason when runc refuses a spec", async () => {
    const b = makeBusyboxBundle(join(work, "refused"), { args: ["true"] });
    const config = JSON.parse(readFileSync(join(b, "config.json"), "utf8"));
    config.mounts.push({ destination: "/mnt", type: "nosuchfs", source: "none" });
    writeFileSync(join(b, "config.json"), JSON.stringify(config));
    await expect(engine.create("refused", { bundle: b })).rejects.toThrow(/cannot create container refused: runc create failed: .*\/mnt.*no such device/);
    expect(readdirSync(join(engine.stateDir, "runc"))).toEqual([]);
    expect(filesUnder(engine.stateDir)).toEqual([]);
  });
});
