import { renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { ErrorCode, HuskError, closeFd, crashPoint, errorMessage, handOverTerminal, log, processStartTime, validateId } from "../core/index.ts";
import { featuresOf } from "../hypervisor/index.ts";
import { checkBundle, loadBundle, type Bundle } from "../oci/index.ts";
import { PersistError, type ContainerDoc, type SandboxDoc } from "../persist/index.ts";
import { LOCKED_CALL_MS, withAgent } from "./agent.ts";
import type { AgentClient } from "../protocol/index.ts";
import type { Context } from "./context.ts";
import { bootSandbox, doneCreating, markRunning } from "./create-sandbox.ts";
import { destroySandbox } from "./destroy-sandbox.ts";
import { containerIn, shimAlive } from "./find.ts";
import { checkHostHooks, hostHooksOf, runHostHooks } from "./hooks.ts";
import { refuseHostNamespaces } from "./host-namespaces.ts";
import { PROC_NS, guestView } from "./rootfs.ts";
import { spawnShim, type ShimTarget } from "./shim-spawn.ts";
import { viewOf, type ViewSource } from "./shim-view.ts";
import { CRI_TYPE, VM_DEFAULTS, checkFitsVm, vmSize, type VmSize } from "./sizing.ts";
import { enterCgroup } from "../cgroups/index.ts";

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds?: number;
  systemdCgroup?: boolean;
}

const CRI_SANDBOX = "io.kubernetes.cri.sandbox-id";

interface JoinTarget {
  id: string;
  by: string; // what named the sandbox, for errors
}

// A container joins an existing sandbox when CRI's annotations name it, or
// when a namespace path names the pid of one of its containers (podman's
// --network, --ipc or --pid container:X give /proc/<X's pid>/ns/<type>, and
// that pid is X's shim). Any other container gets a sandbox of its own.
export function sandboxToJoin(ctx: Context, bundle: Bundle): JoinTarget | undefined {
  const a = bundle.spec.annotations ?? {};
  if (a[CRI_TYPE] === "container" && a[CRI_SANDBOX]) return { id: validateId(a[CRI_SANDBOX], "sandbox"), by: CRI_SANDBOX };
  const byPid = (bundle.spec.linux?.namespaces ?? []).filter((n) => n.path && PROC_NS.test(n.path));
  if (!byPid.length) return undefined;
  // One pass over the documents, whichever namespace names the shim.
  for (const id of ctx.store.list()) {
    const shims = new Set(containersOf(ctx, id).filter(shimAlive).map((c) => c.pid));
    const n = byPid.find((x) => shims.has(Number(PROC_NS.exec(x.path!)![1])));
    if (n) return { id, by: `linux.namespaces (${n.type} ${n.path})` };
  }
  return undefined;
}

function containersOf(ctx: Context, sandboxId: string): ContainerDoc[] {
  try {
    return ctx.store.tryLoad(sandboxId)?.containers ?? [];
  } catch {
    return []; // a document that cannot be read names nothing
  }
}

function checkOptions(opts: CreateOptions, bundle: Bundle): void {
  const invalid = (msg: string) => new HuskError(msg, { code: ErrorCode.InvalidArgument });
  if (opts.preserveFds) throw new HuskError("--preserve-fds is not supported: a VM cannot inherit host fds", { code: ErrorCode.Unimplemented });
  if (bundle.spec.process?.terminal && !opts.consoleSocket) throw invalid("process.terminal is true but no --console-socket was given");
  if (!bundle.spec.process?.terminal && opts.consoleSocket) throw invalid("--console-socket given but process.terminal is false");
}

const exists = (id: string) => new HuskError(`container with id ${id} already exists`, { code: ErrorCode.AlreadyExists });

// The container's record while it is made: state "creating", so that it is
// found (and its id taken) before the agent makes it.
function creatingEntry(id: string, bundle: Bundle): ContainerDoc {
  return {
    id,
    bundle: bundle.path,
    rootfs: bundle.rootfs,
    state: "creating",
    createdAt: new Date().toISOString(),
    process: bundle.spec.process,
    mounts: bundle.spec.mounts,
    annotations: bundle.spec.annotations,
    ...hostHooksOf(bundle.spec),
  };
}

// `husk create`: the container exists, its process waits for start, and a
// shim stands for it on the host (its pid goes to --pid-file). The sandbox
// document is saved when the container is entered as "creating" and when it
// is created; agent calls happen outside the lock.
export async function createContainer(ctx: Context, opts: CreateOptions): Promise<number> {
  validateId(opts.id);
  const bundle = loadBundle(opts.bundle);
  checkOptions(opts, bundle);
  checkBundle(bundle);
  checkHostHooks(bundle.spec);
  const size = vmSize(ctx.settings, bundle.spec); // refuses bad sizes before anything is made
  if (ctx.store.hasContainer(opts.id)) throw exists(opts.id);
  const joined = sandboxToJoin(ctx, bundle);
  const pid = joined ? await joinSandbox(ctx, joined, opts, bundle) : await newSandbox(ctx, opts, bundle, size);
  if (opts.pidFile) writePidFile(opts.pidFile, pid);
  return pid;
}

async function newSandbox(ctx: Context, opts: CreateOptions, bundle: Bundle, size: VmSize): Promise<number> {
  const entry = creatingEntry(opts.id, bundle);
  const sandbox = { id: opts.id, hostname: bundle.spec.hostname, annotations: bundle.spec.annotations, spec: bundle.spec, systemdCgroup: opts.systemdCgroup, ...size };
  const { doc, ready } = await bootSandbox(ctx, sandbox, entry)
    .catch((e) => {
      throw e instanceof PersistError && e.reason === "exists" ? exists(opts.id) : e;
    });
  try {
    const { shim, initPid } = await makeInAgent(ctx, { ...doc, ...ready }, opts, bundle);
    crashPoint("create:shim-started");
    await ctx.store.update(doc.id, (d) => {
      markRunning(d, ready);
      recordCreated(containerIn(d, opts.id), shim, initPid);
    });
    crashPoint("create:saved-created");
    return shim;
  } catch (e) {
    await destroySandbox(ctx, doc.id, { force: true }).catch(() => {});
    throw e;
  } finally {
    doneCreating(ctx, doc.id);
  }
}

async function joinSandbox(ctx: Context, target: JoinTarget, opts: CreateOptions, bundle: Bundle): Promise<number> {
  const sandboxId = target.id;
  const doc = await ctx.store
    .update(sandboxId, (d) => {
      if (d.state !== "running")
        throw new HuskError(`sandbox ${sandboxId} named by ${target.by} is ${d.state}, not running`, { code: ErrorCode.FailedPrecondition });
      if (d.vm && featuresOf(d.vm.driver).isolation === "vm") {
        refuseHostNamespaces(bundle.spec, `container ${opts.id}`);
        checkFitsVm(ctx.settings, bundle.spec, d.config.memoryMiB ?? VM_DEFAULTS.memoryMiB, `container ${opts.id}`);
      }
      if (d.containers.some((c) => c.id === opts.id) || !ctx.store.claimContainer(opts.id, sandboxId)) throw exists(opts.id);
      d.containers.push(creatingEntry(opts.id, bundle));
    })
    .catch((e) => {
      if (e instanceof PersistError && e.reason === "not-found")
        throw new HuskError(`sandbox ${sandboxId} named by ${target.by} does not exist`, { code: ErrorCode.NotFound });
      throw e;
    });
  try {
    const { shim, initPid } = await makeInAgent(ctx, doc, opts, bundle);
    crashPoint("create:shim-started");
    await ctx.store.update(sandboxId, (d) => recordCreated(containerIn(d, opts.id), shim, initPid));
    crashPoint("create:saved-created");
    return shim;
  } catch (e) {
    await dropContainer(ctx, sandboxId, opts.id);
    throw e;
  }
}

// Asks the agent to create the container, then starts its shim and runs the
// prestart and createRuntime hooks (hooks.ts).
async function makeInAgent(ctx: Context, doc: SandboxDoc, opts: CreateOptions, bundle: Bundle): Promise<Made> {
  if (doc.hostCgroup) enterCgroup(doc.hostCgroup); // the shim joins the sandbox's host processes
  const initPid = await createInAgent(ctx, doc, opts.id, bundle);
  log.debug(`create ${opts.id}: made in the agent (pid ${initPid} there)`);
  crashPoint("create:container-made");
  const shim = startShim(ctx, { sandboxId: doc.id, containerId: opts.id }, opts.consoleSocket, viewOf(bundle));
  log.debug(`create ${opts.id}: shim ${shim} started`);
  const c = { ...creatingEntry(opts.id, bundle), pid: shim };
  await runHostHooks(c, "prestart", "creating");
  await runHostHooks(c, "createRuntime", "creating");
  return { shim, initPid };
}

// runc create in the guest (a few seconds under TCG); a hung guest fails the
// create, which then removes what it made.
const CREATE_CALL_MS = 120_000;

// The container's init pid as the agent sees it (the guest's, in a VM).
export async function createInAgent(ctx: Context, doc: SandboxDoc, id: string, bundle: Bundle): Promise<number> {
  const view = guestView(doc, id, bundle);
  const r = await withAgent(ctx, doc, (a) =>
    a.rpc.createContainer({
      containerId: id,
      ociSpecJson: JSON.stringify(view.spec),
      rootfs: view.rootfs,
      terminal: bundle.spec.process?.terminal === true,
      openStdin: true,
    }),
    { timeoutMs: CREATE_CALL_MS, what: `create ${id}: the agent's CreateContainer` },
  );
  return r.pid;
}

interface Made {
  shim: number;
  initPid: number;
}

function recordCreated(c: ContainerDoc, shim?: number, initPid?: number): void {
  c.state = "created";
  if (initPid) c.initPid = initPid;
  if (shim) {
    c.pid = shim;
    c.pidStartTime = processStartTime(shim);
  }
}

// With a console socket, the shim relays a host pty whose master went to
// that socket; the agent's own terminal never leaves the sandbox.
export function startShim(ctx: Context, t: ShimTarget, consoleSocket: string | undefined, view?: ViewSource): number {
  if (!consoleSocket) return spawnShim(ctx, t, undefined, view);
  const slave = handOverTerminal(consoleSocket);
  try {
    return spawnShim(ctx, t, slave, view);
  } finally {
    closeFd(slave);
  }
}

// The Sandbox API's way in: a container in an existing sandbox, no shim.
export async function addContainer(ctx: Context, sandboxId: string, id: string, bundle: Bundle): Promise<void> {
  validateId(id);
  checkBundle(bundle);
  const doc = await ctx.store.update(sandboxId, (d) => {
    if (d.containers.some((c) => c.id === id) || !ctx.store.claimContainer(id, sandboxId)) throw exists(id);
    d.containers.push(creatingEntry(id, bundle));
  });
  try {
    const initPid = await createInAgent(ctx, doc, id, bundle);
    await ctx.store.update(sandboxId, (d) => recordCreated(containerIn(d, id), undefined, initPid));
  } catch (e) {
    await dropContainer(ctx, sandboxId, id);
    throw e;
  }
}

async function dropContainer(ctx: Context, sandboxId: string, id: string): Promise<void> {
  await ctx.store
    .update(sandboxId, async (doc) => {
      const remove = (a: AgentClient) => a.rpc.removeContainer({ containerId: id, force: true });
      await withAgent(ctx, doc, remove, { timeoutMs: LOCKED_CALL_MS, locked: true }).catch(() => {});
      doc.containers = doc.containers.filter((c) => c.id !== id);
    })
    .catch((e) => {
      if (!(e instanceof PersistError)) throw e;
      log.warn(`create ${id}: cleaning up: ${errorMessage(e)}`);
    });
}

// Written atomically: conmon and containerd read it as soon as create returns.
export function writePidFile(path: string, pid: number): void {
  const tmp = join(dirname(path), `.${process.pid}.pid.tmp`);
  writeFileSync(tmp, String(pid));
  renameSync(tmp, path);
}
