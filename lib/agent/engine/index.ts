import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { basename, isAbsolute, join, resolve } from "node:path";
import * as v from "valibot";
import { DEFAULTS } from "../../config/index.ts";
import { ErrorCode, HuskError, describeIssues, errorCode, errorMessage, log, validateId } from "../../core/index.ts";
import {
  checkOperation,
  loadBundle,
  nextStatus,
  parseSignal,
  type ContainerStatus,
  type MountSpec,
  type ProcessSpec,
  type Spec,
} from "../../oci/index.ts";
import { cgroupStats } from "./cgroup.ts";
import { ConsoleSocket } from "./console.ts";
import { checkGuestResources, inGuest } from "./guest-spec.ts";
import { Proc } from "./process.ts";
import { Reaper } from "./reaper.ts";
import { mountsUnder, prepareRootfs, unmountUnder, type PreparedRootfs } from "./rootfs.ts";
import type { Dialect } from "./crun.ts";
import { HOOK_FAILED, Runc, isRuntimeInit } from "./runc.ts";
import { OutputBuffer, pipeIo, terminalIo, type ProcessIo } from "./stdio.ts";
import {
  CreateOptionsSchema,
  ExecOptionsSchema,
  type ConsoleSize,
  type ContainerState,
  type ContainerStats,
  type CreateOptions,
  type ExecOptions,
  type ExitStatus,
  type StreamName,
} from "./types.ts";

export * from "./types.ts";
export { OutputBuffer } from "./stdio.ts";

// The agent's container engine: containers through an OCI runtime binary.
// It holds every process's stdio and exit status itself, so it does not
// depend on any client connection: a client may go away mid-call and a
// later one still finds the output and the status.

export interface EngineOptions {
  stateDir: string; // private: runc state, bundles, pid files, console sockets
  runtime?: string; // OCI runtime binary (settings.ociRuntime)
  outputLimit?: number; // bytes buffered per stream before the process is made to wait
  // pivot_root cannot leave an initramfs: in a guest whose / is rootfs, runc
  // must move the container root and chroot instead (runc --no-pivot).
  noPivot?: boolean;
  // In a VM: containers get cgroups of the guest's own (guest-spec.ts).
  guest?: boolean;
  // How long a finished exec is kept once its exit status and output were
  // collected (default EXEC_GRACE_MS).
  execGraceMs?: number;
}

// Long enough for a shim whose connection broke (a replaced proxy) to come
// back and ask for the status again.
export const EXEC_GRACE_MS = 60_000;

export interface SignalOptions {
  execId?: string; // default: the container's init
  all?: boolean; // every process in the container (init only)
}

interface Container {
  id: string;
  ociId: string; // the runtime's id for it: the id it was created with (rename keeps it)
  dir: string;
  bundle: string;
  spec: Spec;
  rootfs: PreparedRootfs;
  terminal: boolean;
  createdAt: Date;
  status: ContainerStatus;
  init: Proc;
  execs: Map<string, Proc>;
  pendingExecs: Set<string>;
  execSeq: number;
  lock: Promise<unknown>;
}

const DEFAULT_OUTPUT_LIMIT = 1024 * 1024;
const REAP_TIMEOUT_MS = 10_000;
const MAX_DIR_NAME = 200;
const START_HOOKS_WAIT_MS = 10_000;

// The runtime's start returns once init is told to go; init then runs the
// startContainer hooks and only afterwards execs the process. A hook that
// fails makes init exit with the error on the container's output, so wait
// (bounded: the caller holds a lock) until init is either the process or gone.
async function startHooksRan(c: Container, dialect: Dialect): Promise<void> {
  const deadline = Date.now() + START_HOOKS_WAIT_MS;
  while (c.init.running && Date.now() < deadline) {
    const comm = readComm(c.init.pid);
    if (comm !== undefined && !isRuntimeInit(comm)) return;
    await sleep(20);
  }
  if (c.init.running) return; // hooks still running: nothing to judge yet
  const { stdout, stderr } = c.init.io;
  const said = () => `${stderr.head}\n${stdout.head}`.split(/\r?\n/).find((l) => HOOK_FAILED.test(l));
  for (let i = 0; i < 50 && !said() && !(stderr.ended && stdout.ended); i++) await sleep(20);
  const line = said();
  const why = line
    ? dialect.hookWording(line, c.spec.hooks?.startContainer, c.dir)
    : `its init exited with status ${c.init.exit!.exitCode} before running the process`;
  throw new HuskError(`cannot start container ${c.id}: ${why}`, { code: ErrorCode.FailedPrecondition });
}

function parse<S extends v.GenericSchema>(schema: S, input: unknown, what: string): v.InferOutput<S> {
  const r = v.safeParse(schema, input);
  if (!r.success) throw new HuskError(`invalid ${what}: ${describeIssues(r.issues)}`, { code: ErrorCode.InvalidArgument });
  return r.output;
}

function readComm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8");
  } catch {
    return undefined; // gone between the check and the read
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Engine {
  private readonly containers = new Map<string, Container>();
  private readonly reserved = new Set<string>();
  private consoleSeq = 0;
  // Names this engine's cgroups apart from other engines' on the same host.
  private readonly tag: string;

  private constructor(
    readonly stateDir: string,
    private readonly runc: Runc,
    private readonly reaper: Reaper,
    private readonly outputLimit: number,
    private readonly noPivot = false,
    private readonly guest = false,
    private readonly execGraceMs = EXEC_GRACE_MS,
  ) {
    this.tag = new Bun.CryptoHasher("sha256").update(stateDir).digest("hex").slice(0, 8);
  }

  // Makes this process a child subreaper and clears what an earlier engine on
  // the same state dir left behind (its processes' stdio died with it).
  static async open(opts: EngineOptions): Promise<Engine> {
    // Searchable, not listable, down to each container's rootfs: runc resolves
    // it as the container's root, which a user namespace maps to another uid.
    mkdirSync(opts.stateDir, { recursive: true, mode: 0o711 });
    const stateDir = realpathSync(opts.stateDir);
    for (const sub of ["runc", "c", "con", "log"]) mkdirSync(join(stateDir, sub), { recursive: true, mode: sub === "c" ? 0o711 : 0o700 });
    const runtime = opts.runtime ?? DEFAULTS.ociRuntime;
    // Found now rather than at the first container: a fresh engine runs no runc to start.
    if (!Bun.which(runtime))
      throw new HuskError(`cannot run OCI runtime ${runtime}: no such executable`, { code: ErrorCode.Unavailable });
    const runc = new Runc(runtime, join(stateDir, "runc"), join(stateDir, "log"));
    const engine = new Engine(stateDir, runc, new Reaper(), opts.outputLimit ?? DEFAULT_OUTPUT_LIMIT, opts.noPivot, opts.guest, opts.execGraceMs);
    await engine.clearLeftovers();
    return engine;
  }

  private async ociIds(): Promise<string[]> {
    const listed = JSON.parse((await this.runc.run(["list", "--format", "json"])) || "null") as { id: string }[] | null;
    return (listed ?? []).map((c) => c.id);
  }

  private async clearLeftovers(): Promise<void> {
    // A fresh guest has no runc state: no need to run runc to learn that.
    const leftovers = readdirSync(this.runc.root).length ? await this.ociIds() : [];
    for (const id of leftovers) {
      log.warn(`removing container ${id} left by an earlier engine`);
      await this.runc.run(["delete", "--force", id]).catch((e) => log.warn(errorMessage(e)));
    }
    const cdir = join(this.stateDir, "c");
    for (const name of readdirSync(cdir)) {
      await unmountUnder(join(cdir, name));
      rmSync(join(cdir, name), { recursive: true, force: true });
    }
    for (const sub of ["con", "log"])
      for (const name of readdirSync(join(this.stateDir, sub))) rmSync(join(this.stateDir, sub, name), { force: true });
  }

  // What this engine holds for containers (GuestDetails): a removed
  // container must appear in none of these.
  async holdings(): Promise<{ containers: string[]; ociContainers: string[]; containerDirs: string[]; mounts: string[] }> {
    return {
      containers: [...this.containers.keys()],
      ociContainers: await this.ociIds(),
      containerDirs: readdirSync(join(this.stateDir, "c")),
      mounts: mountsUnder(this.stateDir),
    };
  }

  // ---- lifecycle ----

  async create(id: string, options: CreateOptions): Promise<ContainerState> {
    validateId(id);
    const opts = parse(CreateOptionsSchema, options, `options for container ${id}`);
    if (this.containers.has(id) || this.reserved.has(id))
      throw new HuskError(`container ${id} already exists`, { code: ErrorCode.AlreadyExists });
    this.reserved.add(id);
    const dir = join(this.stateDir, "c", id.length <= MAX_DIR_NAME ? id : new Bun.CryptoHasher("sha256").update(id).digest("hex"));
    let rootfs: PreparedRootfs | undefined;
    try {
      if (existsSync(dir))
        throw new HuskError(`container ${id} already exists (state in ${dir})`, { code: ErrorCode.AlreadyExists });
      mkdirSync(dir, { mode: 0o711 });
      const prepared = await this.prepare(id, opts, dir);
      const { bundle, spec } = prepared;
      rootfs = prepared.rootfs;
      // runc runs every container from a config.json of ours in dir.
      writeFileSync(join(dir, "config.json"), JSON.stringify(this.runc.dialect.spec(spec, dir)));
      const terminal = spec.process?.terminal === true;
      const pidFile = join(dir, "init.pid");
      const { io, pid } = await this.launch(`container ${id}`, terminal, (extra) =>
        ["create", "--bundle", dir, "--pid-file", pidFile, ...(this.noPivot ? ["--no-pivot"] : []), ...extra, id],
        pidFile,
      ).catch((e) => {
        const why = this.runc.dialect.hookWording(errorMessage(e), spec.hooks?.createContainer, dir);
        throw new HuskError(`cannot create container ${id}: ${why}`, { code: errorCode(e), cause: e });
      });
      const c: Container = {
        id,
        ociId: id,
        dir,
        bundle,
        spec,
        rootfs,
        terminal,
        createdAt: new Date(),
        status: "created",
        init: new Proc("", pid, io, terminal, this.reaper),
        execs: new Map(),
        pendingExecs: new Set(),
        execSeq: 0,
        lock: Promise.resolve(),
      };
      void c.init.exited.then(() => (c.status = nextStatus(c.status, "stopped")));
      this.containers.set(id, c);
      return this.state(id);
    } catch (e) {
      await rootfs?.release().catch(() => {});
      if (!this.containers.has(id)) rmSync(dir, { recursive: true, force: true });
      throw e;
    } finally {
      this.reserved.delete(id);
    }
  }

  // The spec runc will run: root.path absolute, terminal as asked, and a
  // cgroup named for this engine so that containers of the same id under
  // other engines on one host (local sandboxes) never share a cgroup.
  private async prepare(
    id: string,
    opts: v.InferOutput<typeof CreateOptionsSchema>,
    dir: string,
  ): Promise<{ bundle: string; spec: Spec; rootfs: PreparedRootfs }> {
    let bundle: string;
    let spec: Spec;
    let rootfs: PreparedRootfs;
    if ("bundle" in opts) {
      const b = loadBundle(opts.bundle);
      bundle = b.path;
      spec = { ...b.spec, mounts: b.spec.mounts?.map((m) => absoluteBindSource(m, b.path)) };
      rootfs = { path: b.rootfs, release: async () => {} };
    } else {
      if (!opts.spec.process)
        throw new HuskError(`invalid spec for container ${id}: process: a container needs a process`, {
          code: ErrorCode.InvalidArgument,
        });
      bundle = dir;
      spec = opts.spec;
      rootfs = await prepareRootfs(opts.rootfs, dir); // last: nothing below can fail and leave it mounted
    }
    const name = id.length <= MAX_DIR_NAME ? id : basename(dir);
    const cgroupsPath = spec.linux?.cgroupsPath || `husk-${this.tag}-${name}`;
    const made: Spec = {
      ...spec,
      root: { ...spec.root, path: rootfs.path, readonly: spec.root?.readonly ?? false },
      process: withTerminal(spec.process!, opts.terminal, opts.consoleSize),
      linux: { ...spec.linux, cgroupsPath },
    };
    try {
      return { bundle, rootfs, spec: this.guest ? inGuest(made, name) : made };
    } catch (e) {
      await rootfs.release().catch(() => {});
      throw e;
    }
  }

  // Runs `runc create` or `runc exec -d` with the process's stdio attached,
  // and returns the process's pid and io once runc is done.
  private async launch(
    what: string,
    terminal: boolean,
    args: (extra: string[]) => string[],
    pidFile: string,
  ): Promise<{ io: ProcessIo; pid: number }> {
    let io: ProcessIo | undefined;
    try {
      if (terminal) {
        const sock = ConsoleSocket.listen(join(this.stateDir, "con", `${++this.consoleSeq}.sock`));
        try {
          await this.runc.run(args(["--console-socket", sock.path]), { stdio: ["ignore", "ignore", "ignore"] });
          io = terminalIo(sock.takeMaster(), this.outputLimit, what);
        } finally {
          sock.close();
        }
      } else {
        const p = pipeIo(this.outputLimit, what);
        io = p.io;
        try {
          await this.runc.run(args([]), { stdio: p.childFds });
        } finally {
          p.closeChildFds();
        }
      }
      const pid = Number(readFileSync(pidFile, "utf8").trim());
      rmSync(pidFile, { force: true });
      if (!Number.isInteger(pid) || pid <= 0)
        throw new HuskError(`the OCI runtime wrote no pid for ${what}`, { code: ErrorCode.Internal });
      return { io, pid };
    } catch (e) {
      io?.stdout.discard();
      io?.stderr.discard();
      io?.release();
      rmSync(pidFile, { force: true });
      throw e;
    }
  }

  start(id: string): Promise<void> {
    return this.locked(id, async (c) => {
      checkOperation(id, c.status, "start");
      this.runc.dialect.beforeStart(c.dir);
      await this.runc.run(["start", c.ociId]);
      if (c.spec.hooks?.startContainer?.length) await startHooksRan(c, this.runc.dialect);
      c.status = nextStatus(c.status, "running"); // stays stopped if the init already exited
    });
  }

  // Another id for a live container (a checkpoint restored under a new
  // name): calls use the new one; the runtime keeps the one it knows.
  async rename(id: string, newId: string): Promise<void> {
    validateId(newId);
    await this.locked(id, async (c) => {
      if (newId === id) return;
      if (this.containers.has(newId) || this.reserved.has(newId))
        throw new HuskError(`container ${newId} already exists`, { code: ErrorCode.AlreadyExists });
      this.containers.delete(id);
      c.id = newId;
      this.containers.set(newId, c);
    });
  }

  pause(id: string): Promise<void> {
    return this.locked(id, async (c) => {
      checkOperation(id, c.status, "pause");
      await this.runc.run(["pause", c.ociId]);
      c.status = nextStatus(c.status, "paused");
    });
  }

  resume(id: string): Promise<void> {
    return this.locked(id, async (c) => {
      checkOperation(id, c.status, "resume");
      await this.runc.run(["resume", c.ociId]);
      c.status = nextStatus(c.status, "running");
    });
  }

  // Without force only a created or stopped container may go; with force its
  // processes are killed first. Afterwards nothing of it is left on disk.
  delete(id: string, opts: { force?: boolean } = {}): Promise<void> {
    return this.locked(id, async (c) => {
      checkOperation(id, c.status, "delete", { force: opts.force });
      await this.runc.run(["delete", ...(opts.force ? ["--force"] : []), c.ociId]);
      await this.reapAll(c);
      for (const p of [c.init, ...c.execs.values()]) {
        p.io.stdout.discard();
        p.io.stderr.discard();
        p.io.release();
      }
      await c.rootfs.release();
      rmSync(c.dir, { recursive: true, force: true });
      this.containers.delete(id);
    });
  }

  // The pid namespace is gone once runc has deleted the container, so every
  // process we started dies; collect them all, killing any straggler.
  private async reapAll(c: Container): Promise<void> {
    const procs = [c.init, ...c.execs.values()];
    const all = Promise.all(procs.map((p) => p.exited));
    const timeout = Symbol();
    if ((await Promise.race([all, sleep(REAP_TIMEOUT_MS).then(() => timeout)])) !== timeout) return;
    for (const p of procs) if (p.running) this.kill(p.pid, 9);
    await all;
  }

  // Stops every container; for shutting the agent down.
  async close(): Promise<void> {
    for (const id of [...this.containers.keys()]) {
      await this.delete(id, { force: true }).catch((e) => log.warn(`closing engine: ${errorMessage(e)}`));
    }
  }

  // ---- processes ----

  async exec(id: string, options: ExecOptions): Promise<string> {
    const c = this.get(id);
    const opts = parse(ExecOptionsSchema, options, `exec options for container ${id}`);
    checkOperation(id, c.status, "exec");
    let execId = opts.execId;
    if (execId === undefined) do execId = `exec-${++c.execSeq}`; while (c.execs.has(execId) || c.pendingExecs.has(execId));
    validateId(execId, "exec");
    if (c.execs.has(execId) || c.pendingExecs.has(execId))
      throw new HuskError(`exec ${execId} already exists in container ${id}`, { code: ErrorCode.AlreadyExists });
    // Unset fields (env, cwd, user) come from the container's own process.
    const base = c.spec.process!;
    const processSpec: ProcessSpec = {
      ...base,
      args: opts.args,
      env: opts.env ?? base.env,
      cwd: opts.cwd ?? base.cwd,
      user: opts.user ?? base.user,
      terminal: opts.terminal === true,
      consoleSize: opts.consoleSize ? { height: opts.consoleSize.height, width: opts.consoleSize.width } : undefined,
    };
    const specFile = join(c.dir, `exec-${execId}.json`);
    const pidFile = join(c.dir, `exec-${execId}.pid`);
    // Reserved while runc runs, so a concurrent exec with the same id fails.
    c.pendingExecs.add(execId);
    const what = `exec ${execId} in container ${id}`;
    try {
      writeFileSync(specFile, JSON.stringify(processSpec));
      const { io, pid } = await this.launch(what, processSpec.terminal === true, (extra) =>
        ["exec", "--detach", "--process", specFile, "--pid-file", pidFile, ...extra, c.ociId],
        pidFile,
      );
      c.execs.set(execId, new Proc(execId, pid, io, processSpec.terminal === true, this.reaper));
      return execId;
    } catch (e) {
      throw new HuskError(`cannot ${what}: ${errorMessage(e)}`, { code: errorCode(e), cause: e });
    } finally {
      rmSync(specFile, { force: true });
      c.pendingExecs.delete(execId);
    }
  }

  // Drops a finished exec's record and any output nobody read (a collected
  // exec goes by itself: forgetLater).
  removeExec(id: string, execId: string): void {
    const p = this.proc(id, execId);
    if (!execId || p.running)
      throw new HuskError(`${describe(id, execId)} is still running: signal it first`, { code: ErrorCode.FailedPrecondition });
    p.io.stdout.discard();
    p.io.stderr.discard();
    p.io.release();
    this.get(id).execs.delete(execId);
  }

  async signal(id: string, signal: number | string, opts: SignalOptions = {}): Promise<void> {
    const c = this.get(id);
    const sig = parseSignal(signal);
    if (opts.execId) {
      const p = this.proc(id, opts.execId);
      if (!p.running)
        throw new HuskError(`exec ${opts.execId} in container ${id} has exited`, { code: ErrorCode.FailedPrecondition });
      this.kill(p.pid, sig); // still our unreaped child, so the pid cannot have been reused
      return;
    }
    checkOperation(id, c.status, "kill", { all: opts.all });
    await this.runc.run(["kill", ...(opts.all ? ["--all"] : []), c.ociId, String(sig)]);
  }

  private kill(pid: number, sig: number): void {
    try {
      process.kill(pid, sig);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ESRCH")
        throw new HuskError(`cannot signal pid ${pid}: ${errorMessage(e)}`, { code: ErrorCode.Internal });
    }
  }

  wait(id: string, execId?: string): Promise<ExitStatus> {
    const p = this.proc(id, execId);
    if (execId) void p.exited.then(() => this.forgetLater(id, execId, p));
    return p.exited;
  }

  // An exec whose exit status was collected is forgotten once its output is
  // all read and the grace has passed: else every exec probe of a long-lived
  // container would hold guest memory until the container is deleted.
  private forgetLater(id: string, execId: string, p: Proc): void {
    const timer = setTimeout(() => {
      if (this.containers.get(id)?.execs.get(execId) !== p) return;
      if (!p.io.stdout.done || !p.io.stderr.done) return this.forgetLater(id, execId, p);
      this.removeExec(id, execId);
    }, this.execGraceMs);
    timer.unref?.();
  }

  writeStdin(id: string, execId: string | undefined, data: Uint8Array): Promise<number> {
    return this.proc(id, execId).io.stdin.write(data);
  }

  closeStdin(id: string, execId?: string): Promise<void> {
    return this.proc(id, execId).io.stdin.close();
  }

  // The process's output: an async iterable (ends at end of stream) with a
  // read(max) for pull-style callers. Unread output stays for the next reader.
  output(id: string, execId: string | undefined, stream: StreamName): OutputBuffer {
    const io = this.proc(id, execId).io;
    return stream === "stderr" ? io.stderr : io.stdout;
  }

  resize(id: string, execId: string | undefined, size: ConsoleSize): void {
    const p = this.proc(id, execId);
    if (!p.io.resize) throw new HuskError(`${describe(id, execId)} has no terminal`, { code: ErrorCode.FailedPrecondition });
    try {
      p.io.resize(size);
    } catch (e) {
      throw new HuskError(`cannot resize the terminal of ${describe(id, execId)}: ${errorMessage(e)}`, {
        code: ErrorCode.Internal,
      });
    }
  }

  // ---- inspection ----

  state(id: string): ContainerState {
    const c = this.get(id);
    return {
      id,
      status: c.status,
      pid: c.init.pid,
      bundle: c.bundle,
      rootfs: c.rootfs.path,
      terminal: c.terminal,
      createdAt: c.createdAt,
      exit: c.init.exit,
      execs: [...c.execs.keys()],
    };
  }

  list(): ContainerState[] {
    return [...this.containers.keys()].map((id) => this.state(id));
  }

  // Pids (as the agent sees them) of every process in the container.
  async ps(id: string): Promise<number[]> {
    const c = this.get(id);
    checkOperation(id, c.status, "ps");
    const out = await this.runc.run(["ps", "--format", "json", c.ociId]);
    const pids = JSON.parse(out || "null") as number[] | null;
    return pids ?? [];
  }

  // runc update -r: new limits for a live container's cgroup. In a VM what
  // the guest cannot give (a cpuset beyond its vCPUs) is refused by field.
  update(id: string, resources: Record<string, unknown>): Promise<void> {
    return this.locked(id, async (c) => {
      checkOperation(id, c.status, "update");
      if (this.guest) checkGuestResources(resources);
      const file = join(c.dir, "update.json");
      writeFileSync(file, JSON.stringify(resources));
      try {
        await this.runc.run(["update", "--resources", file, c.ociId]);
      } finally {
        rmSync(file, { force: true });
      }
    });
  }

  // The exec id of each running exec, by its pid.
  execPids(id: string): Map<number, string> {
    const m = new Map<number, string>();
    for (const [execId, p] of this.get(id).execs) if (p.running) m.set(p.pid, execId);
    return m;
  }

  // From `runtime events --stats`, or from the cgroup when the runtime has no
  // such command (crun) or cannot answer.
  async stats(id: string): Promise<ContainerStats> {
    const c = this.get(id);
    checkOperation(id, c.status, "stats");
    let failure: unknown;
    try {
      const stats = parseEvents(await this.runc.run(["events", "--stats", c.ociId]));
      if (stats) return stats;
    } catch (e) {
      failure = e;
    }
    const fromCgroup = cgroupStats(c.init.pid);
    if (fromCgroup) return fromCgroup;
    throw new HuskError(`no statistics for container ${id}: ${failure ? errorMessage(failure) : "unreadable runtime output"}`, {
      code: ErrorCode.Unavailable,
    });
  }

  // ---- helpers ----

  private get(id: string): Container {
    const c = this.containers.get(id);
    if (!c) throw new HuskError(`container ${JSON.stringify(id.slice(0, 64))} does not exist`, { code: ErrorCode.NotFound });
    return c;
  }

  private proc(id: string, execId?: string): Proc {
    const c = this.get(id);
    if (!execId) return c.init;
    const p = c.execs.get(execId);
    if (!p)
      throw new HuskError(`exec ${JSON.stringify(execId.slice(0, 64))} does not exist in container ${id}`, {
        code: ErrorCode.NotFound,
      });
    return p;
  }

  // Lifecycle changes of one container run one at a time.
  private locked<T>(id: string, op: (c: Container) => Promise<T>): Promise<T> {
    let c: Container;
    try {
      c = this.get(id);
    } catch (e) {
      return Promise.reject(e);
    }
    const run = c.lock.then(() => op(c));
    c.lock = run.catch(() => undefined);
    return run;
  }
}

type EventStats = { cpu?: { usage?: { total?: number } }; memory?: { usage?: { usage?: number } }; pids?: { current?: number } };

function parseEvents(out: string): ContainerStats | undefined {
  let data: EventStats | undefined;
  try {
    data = (JSON.parse(out) as { data?: EventStats }).data;
  } catch {
    return undefined;
  }
  if (!data?.cpu && !data?.memory) return undefined;
  return {
    cpuUsageNs: data.cpu?.usage?.total ?? 0,
    memoryBytes: data.memory?.usage?.usage ?? 0,
    pids: data.pids?.current ?? 0,
  };
}

// runc resolves a relative bind source against the bundle; our copy of
// config.json lives elsewhere, so make it absolute first.
function absoluteBindSource(m: MountSpec, bundle: string): MountSpec {
  const bind = m.type === "bind" || m.options?.some((o) => o === "bind" || o === "rbind");
  return bind && m.source && !isAbsolute(m.source) ? { ...m, source: resolve(bundle, m.source) } : m;
}

function withTerminal(p: ProcessSpec, terminal: boolean | undefined, size: ConsoleSize | undefined): ProcessSpec {
  return {
    ...p,
    terminal: terminal ?? p.terminal,
    ...(size ? { consoleSize: { height: size.height, width: size.width } } : {}),
  };
}

const describe = (id: string, execId?: string) => (execId ? `exec ${execId} in container ${id}` : `container ${id}`);
