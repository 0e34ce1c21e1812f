import { readFileSync, statSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { ErrorCode, HuskError, errorMessage, isAlive, log, processStartTime } from "../core/index.ts";
import { LIMITS, ProcessSchema, type ProcessSpec } from "../oci/index.ts";
import { describeIssues } from "../core/index.ts";
import * as v from "valibot";
import { connect } from "./agent.ts";
import type { Context } from "./context.ts";
import { startShim, writePidFile } from "./create.ts";
import { findContainer, liveStatus } from "./find.ts";
import { checkOperation } from "../oci/index.ts";
import type { ShimTarget } from "./shim-spawn.ts";
import type { AgentClient } from "../protocol/client/index.ts";
import { attachTerminal, drainOutput, pumpInput, pumpOutput, waitExit } from "./stdio.ts";

export interface ExecOptions {
  processFile?: string;
  args: string[];
  env: string[];
  cwd?: string;
  user?: string;
  tty: boolean;
  detach: boolean;
  pidFile?: string;
  consoleSocket?: string;
}

function loadProcessFile(path: string): ProcessSpec {
  let raw: unknown;
  try {
    const size = statSync(path).size;
    if (size > LIMITS.configBytes) throw new Error(`${size} bytes, over the limit of ${LIMITS.configBytes}`);
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new HuskError(`exec --process ${path}: ${errorMessage(e)}`, { code: ErrorCode.InvalidArgument });
  }
  return checkedProcess(raw, `exec --process ${path}`);
}

// Within the same bounds as a bundle's process (docs/limits.md).
function checkedProcess(raw: unknown, where: string): ProcessSpec {
  const r = v.safeParse(ProcessSchema, raw);
  if (!r.success) throw new HuskError(`${where}: ${describeIssues(r.issues)}`, { code: ErrorCode.InvalidArgument });
  return r.output;
}

function parseUser(user: string | undefined, base: ProcessSpec["user"]): ProcessSpec["user"] {
  if (!user) return base;
  const m = /^(\d+)(?::(\d+))?$/.exec(user);
  if (!m) throw new HuskError(`exec --user ${user}: give uid[:gid] as numbers`);
  return { uid: Number(m[1]), gid: Number(m[2] ?? 0) };
}

// The process to run: --process file, or the container's own process with
// args, env, cwd and user taken from the flags.
export function execProcessSpec(opts: ExecOptions, containerProcess: Partial<ProcessSpec> | undefined): ProcessSpec {
  if (opts.processFile) return loadProcessFile(opts.processFile);
  const base = containerProcess ?? {};
  const spec = {
    args: opts.args,
    env: [...(base.env ?? []), ...opts.env],
    cwd: opts.cwd ?? base.cwd ?? "/",
    user: parseUser(opts.user, base.user ?? { uid: 0, gid: 0 }),
    terminal: opts.tty,
  };
  return checkedProcess(spec, "exec");
}

const SIGKILL = 9;

// A terminal reaches a detached caller through --console-socket, whose relay
// (the shim) outlives this command; attached, our own stdin is the terminal.
function checkTerminal(tty: boolean, opts: ExecOptions): void {
  if (!tty && opts.consoleSocket) throw new HuskError("exec --console-socket given without --tty");
  if (tty && opts.detach && !opts.consoleSocket) throw new HuskError("exec --tty --detach needs --console-socket");
  if (tty && opts.consoleSocket && !opts.detach)
    throw new HuskError("exec --tty --console-socket is supported with --detach only (as conmon runs it)");
}

// The exec already runs: if its terminal cannot reach the caller (or the shim
// cannot start), nobody would ever wait for it, so it is killed (runc does the same).
async function detachedShim(ctx: Context, agent: AgentClient, t: ShimTarget, consoleSocket: string | undefined): Promise<number> {
  try {
    return startShim(ctx, t, consoleSocket);
  } catch (e) {
    await agent.rpc.signalProcess({ containerId: t.containerId, execId: t.execId ?? "", signal: SIGKILL }).catch(() => {});
    throw e;
  }
}

// The pid given to --pid-file is recorded with the container, so that `ps`
// lists it (containerd matches exec pids against it); records of processes
// that have gone are dropped on the way.
async function publishExec(ctx: Context, sandboxId: string, id: string, execId: string, pid: number, pidFile: string): Promise<void> {
  await ctx.store.update(sandboxId, (d) => {
    const c = d.containers.find((x) => x.id === id);
    if (!c) return;
    const live = (c.execs ?? []).filter((e) => isAlive(e.process.pid, e.process.startTime));
    c.execs = [...live, { id: execId, process: { pid, startTime: processStartTime(pid) } }];
  });
  writePidFile(pidFile, pid);
}

// `husk exec`: runs a process in a running container. Attached, this process
// relays stdio and exits with the process's status; with --detach a shim does
// that and its pid goes to --pid-file (what conmon waits for).
export async function execInContainer(ctx: Context, id: string, opts: ExecOptions): Promise<number> {
  const { sandbox, container } = findContainer(ctx, id);
  checkOperation(id, await liveStatus(ctx, sandbox, container), "exec");
  const proc = execProcessSpec(opts, container.process as Partial<ProcessSpec> | undefined);
  const tty = proc.terminal === true;
  checkTerminal(tty, opts);
  const execId = randomUUID();
  const agent = await connect(ctx, sandbox);
  log.debug(`exec ${execId} in ${id}: connected to the agent`);
  try {
    await agent.rpc.execProcess({
      containerId: id,
      execId,
      args: proc.args,
      env: proc.env ?? [],
      cwd: proc.cwd,
      user: { uid: proc.user.uid, gid: proc.user.gid, additionalGids: proc.user.additionalGids ?? [] },
      tty,
      openStdin: true,
    });
    log.debug(`exec ${execId} in ${id}: started`);
    if (opts.detach) {
      const pid = await detachedShim(ctx, agent, { sandboxId: sandbox.id, containerId: id, execId }, opts.consoleSocket);
      if (opts.pidFile) await publishExec(ctx, sandbox.id, id, execId, pid, opts.pidFile);
      return 0;
    }
    // Attached, this process stands for the exec.
    if (opts.pidFile) await publishExec(ctx, sandbox.id, id, execId, process.pid, opts.pidFile);
    const ref = { containerId: id, execId };
    const restore = tty ? attachTerminal(agent, ref) : () => {};
    try {
      const output = pumpOutput(agent, ref);
      pumpInput(agent, ref).catch(() => {});
      const code = await waitExit(agent, ref);
      log.debug(`exec ${execId} in ${id}: exited with ${code}`);
      await drainOutput(output);
      return code;
    } finally {
      restore();
    }
  } finally {
    agent.close();
  }
}
