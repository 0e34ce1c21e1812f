import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  becomeSubreaper,
  closeFd,
  decodeWaitStatus,
  listenUnix,
  receiveFd,
  setNonBlocking,
  setWindowSize,
  tryReap,
} from "../../lib/sys/index.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { builtBinary } from "../helpers/husk.ts";
import { qemuEnv, vmSkipReason } from "../qemu/assets.ts";

// What conmon does with a terminal: listen on a console socket, take the pty
// master the runtime sends, do the I/O on it, and reap the pid-file process.

class ConsoleSocket {
  readonly path: string;
  private fd: number;
  constructor(dir: string) {
    this.path = join(dir, "console.sock");
    this.fd = listenUnix(this.path);
  }
  // The master the runtime sent (it must have arrived by the time create returns).
  take(): Terminal {
    const master = receiveFd(this.fd);
    if (master === undefined) throw new Error("no terminal arrived on the console socket");
    return new Terminal(master);
  }
  close(): void {
    closeFd(this.fd);
  }
}

// Read by polling a non-blocking master on the test's own thread: a stream
// that owns the descriptor would close it at EIO, and a later close of the
// same number could hit the next test's master (seen as a terminal that
// showed nothing, or only its first chunk).
class Terminal {
  text = "";
  ended = false;
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly buf = Buffer.alloc(4096);
  constructor(readonly master: number) {
    setNonBlocking(master);
    this.timer = setInterval(() => this.drain(), 10);
    this.timer.unref?.();
  }
  private drain(): void {
    for (;;) {
      let n: number;
      try {
        n = readSync(this.master, this.buf);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EAGAIN") return;
        // EIO on a master means every slave is closed: the end of the session.
        n = 0;
      }
      if (n === 0) return this.stop();
      this.text += this.buf.toString("utf8", 0, n);
    }
  }
  private stop(): void {
    this.ended = true;
    clearInterval(this.timer);
  }
  write(s: string): void {
    writeSync(this.master, s);
  }
  close(): void {
    this.stop();
    closeFd(this.master);
  }
  async waitFor(pattern: RegExp, what: string): Promise<void> {
    await until(() => pattern.test(this.text), 20_000, what).catch((e) => {
      throw new Error(`${e.message}; the terminal showed ${JSON.stringify(this.text)}`);
    });
  }
}

async function exitOf(pid: number): Promise<number> {
  let status: number | undefined;
  await until(() => {
    const r = tryReap(pid);
    if (r.done && "status" in r) status = decodeWaitStatus(r.status).exitCode;
    return r.done;
  }, 20_000, `process ${pid} to exit`);
  if (status === undefined) throw new Error(`process ${pid} was not our child to reap`);
  return status;
}

const tmp = () => mkdtempSync(join(tmpdir(), "husk-tty-"));
const pidOf = (file: string) => Number(readFileSync(file, "utf8"));

const vmSkip = vmSkipReason();
if (vmSkip) console.log(`test/oci/tty (qemu): skipped: ${vmSkip}`);
const POD = "ttypod";
const JOIN_POD = { "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": POD };

// Both drivers: a VM's terminal lives in the guest, the host's is the shim's.
// Under qemu the first test boots a sandbox of its own (podman run -t) and the
// others join one shared pod sandbox, so the file boots few VMs.
describe.each([
  { driver: "local", skip: false },
  { driver: "qemu", skip: !!vmSkip },
])("terminals through --console-socket ($driver driver)", ({ driver, skip }) => {
  let cli: Cli;
  const vm = driver === "qemu";
  const bundle = (dir: string, opts: { args: string[]; terminal?: boolean }, pod = vm) => {
    const b = makeBusyboxBundle(join(dir, "bundle"), opts);
    if (pod) {
      const spec = JSON.parse(readFileSync(join(b, "config.json"), "utf8"));
      writeFileSync(join(b, "config.json"), JSON.stringify({ ...spec, annotations: JOIN_POD }));
    }
    return b;
  };
  // Orphaned shims come to us, as they come to conmon, so we can read their exit status.
  beforeAll(() => {
    if (skip) return;
    becomeSubreaper();
    cli = new Cli(vm ? qemuEnv() : {});
    if (vm) {
      cli.ok(["create", "--bundle", bundle(tmp(), { args: ["sleep", "600"] }, false), POD], { stdioFile: cli.out });
      cli.ok(["start", POD]);
    }
  }, 600_000);
  afterAll(async () => {
    if (skip) return;
    for (const id of ["tty1", "tty2", "tty3", "tty4", POD]) cli.run(["delete", "--force", id]);
    await until(() => processesUsing(cli.root).length === 0, 30_000, "shims and agents to exit");
  }, 120_000);
  const it = test.skipIf(skip);
  const TEST_MS = 180_000; // a VM boot under TCG on a loaded host

  it("create --console-socket: the master shows the container's tty, output and exit status", async () => {
    const dir = tmp();
    const b = bundle(dir, { args: ["sh", "-c", "tty; echo hi; exit 3"], terminal: true }, false);
    const sock = new ConsoleSocket(dir);
    const pidFile = join(dir, "pid");
    cli.ok(["create", "--bundle", b, "--console-socket", sock.path, "--pid-file", pidFile, "tty1"]);
    const term = sock.take();
    sock.close();
    expect(cli.state("tty1").status).toBe("created");
    cli.ok(["start", "tty1"]);
    // One line discipline (the container's): "\r\n" once, never "\r\r\n".
    await term.waitFor(/^\/dev\/pts\/\d+\r\nhi\r\n$/, "tty and hi");
    expect(await exitOf(pidOf(pidFile))).toBe(3);
    await until(() => term.ended, 10_000, "the terminal to hang up when the container exits");
    expect(cli.state("tty1").status).toBe("stopped");
    cli.ok(["delete", "tty1"]);
    term.close();
  }, TEST_MS);

  it("keystrokes reach the container and window size changes follow the master", async () => {
    const dir = tmp();
    const script = 'read line; echo "got $line"; while true; do stty size; sleep 0.2; done';
    const b = bundle(dir, { args: ["sh", "-c", script], terminal: true });
    const sock = new ConsoleSocket(dir);
    const pidFile = join(dir, "pid");
    cli.ok(["create", "--bundle", b, "--console-socket", sock.path, "--pid-file", pidFile, "tty2"]);
    const term = sock.take();
    sock.close();
    cli.ok(["start", "tty2"]);
    term.write("abc\r");
    await term.waitFor(/got abc\r\n/, "the typed line echoed back by the container");
    setWindowSize(term.master, 37, 123);
    await term.waitFor(/^37 123\r$/m, "stty size to report the new size");
    setWindowSize(term.master, 41, 99);
    await term.waitFor(/^41 99\r$/m, "stty size to report the second size");
    cli.ok(["kill", "tty2", "KILL"]);
    expect(await exitOf(pidOf(pidFile))).toBe(137);
    cli.ok(["delete", "tty2"]);
    term.close();
  }, TEST_MS);

  it("exec -t --console-socket --detach --pid-file, as conmon runs podman exec -t", async () => {
    const dir = tmp();
    const b = bundle(dir, { args: ["sleep", "60"] });
    cli.ok(["create", "--bundle", b, "tty3"], { stdioFile: cli.out });
    cli.ok(["start", "tty3"]);
    const sock = new ConsoleSocket(dir);
    const attached = cli.run(["exec", "-t", "--console-socket", sock.path, "tty3", "tty"]);
    expect(attached.stderr).toMatch(/exec --tty --console-socket is supported with --detach only/);
    const processCount = () => cli.ok(["ps", "tty3"]).trim().split("\n").length - 1;
    const before = processCount();
    const lost = cli.run(["exec", "-t", "--console-socket", join(dir, "nobody.sock"), "--detach", "tty3", "sleep", "50"]);
    expect(lost.stderr).toMatch(/cannot send the terminal to console socket .*nobody\.sock/);
    // The exec whose terminal could not be handed over does not linger.
    await until(() => processCount() === before, 10_000, "the stranded exec to be killed");
    const pidFile = join(dir, "exec.pid");
    cli.ok(["exec", "-t", "--console-socket", sock.path, "--detach", "--pid-file", pidFile, "tty3", "sh", "-c", "tty; echo inside; exit 4"]);
    const term = sock.take();
    sock.close();
    await term.waitFor(/^\/dev\/pts\/\d+\r\ninside\r\n$/, "the exec's tty and output");
    expect(await exitOf(pidOf(pidFile))).toBe(4);
    expect(cli.state("tty3").status).toBe("running");
    cli.ok(["delete", "--force", "tty3"]);
    term.close();
  }, TEST_MS);

  it("exec -t attached to the user's own terminal: raw while attached, sized, restored after", async () => {
    const dir = tmp();
    const b = bundle(dir, { args: ["sleep", "600"] });
    cli.ok(["create", "--bundle", b, "tty4"], { stdioFile: cli.out });
    cli.ok(["start", "tty4"]);
    // script(1) gives the command a terminal of its own, as a login shell has.
    const execLog = join(dir, "exec.log");
    const husk = `${builtBinary()} --root ${cli.root} --debug --log ${execLog}`;
    const inner = `stty rows 25 cols 77; ${husk} exec -t tty4 sh -c 'tty; read x; echo "got $x"; stty size; exit 6'; echo "rc=$?"`;
    const child = spawn("script", ["-qec", inner, "/dev/null"], { env: { ...process.env, HUSK_CONFIG: "/dev/null", HUSK_HYPERVISOR: "local", ...cli.env } });
    let text = "";
    child.stdout.on("data", (c) => (text += c.toString()));
    try {
      // Generous: under the full suite's load a TCG guest can take this long to spawn.
      await until(() => /\/dev\/pts\/\d+\r\n/.test(text), 120_000, "the exec's tty");
      child.stdin.write("hello\r");
      await until(() => /rc=\d+/.test(text), 30_000, "the exec to end");
    } catch (e) {
      const ps = cli.run(["ps", "tty4"]);
      const seen = `the terminal showed ${JSON.stringify(text)}; ps: ${ps.stdout}${ps.stderr}; exec log: ${cli.output(execLog)}`;
      child.kill("SIGKILL");
      cli.run(["delete", "--force", "tty4"]);
      throw new Error(`${(e as Error).message}; ${seen}`);
    } finally {
      child.stdin.end();
    }
    // Our terminal was raw (the container's pty alone echoes and maps \n to \r\n),
    // its size reached the container, and the shell's terminal is cooked again after.
    expect(text).toMatch(/^\/dev\/pts\/\d+\r\nhello\r\ngot hello\r\n25 77\r\nrc=6\r\n$/);
    cli.ok(["delete", "--force", "tty4"]);
  }, TEST_MS);

  it("console socket mistakes are refused plainly and leave nothing behind", () => {
    const dir = tmp();
    const b = bundle(dir, { args: ["true"], terminal: true }, false);
    const expectError = (args: string[], pattern: RegExp) => {
      const r = cli.run(args);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(pattern);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    };
    expectError(["create", "--bundle", b, "bad1"], /process\.terminal is true but no --console-socket was given/);
    const nobody = join(dir, "nobody.sock");
    expectError(["create", "--bundle", b, "--console-socket", nobody, "bad2"], /cannot send the terminal to console socket .*nobody\.sock/);
    expect(cli.leftovers().filter((n) => n !== POD && n !== "qemu")).toEqual([]);
  }, TEST_MS);
});
