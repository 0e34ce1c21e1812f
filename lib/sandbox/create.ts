import { writeFileSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { HuskError, processStartTime, validateId } from "../core/index.ts";
import { closeFd, handOverTerminal } from "../core/pty.ts";
import { loadBundle, type Bundle } from "../oci/index.ts";
import { PersistError } from "../persist/index.ts";
import { withAgent } from "./agent.ts";
import type { Context } from "./context.ts";
import { createSandbox } from "./create-sandbox.ts";
import { destroySandbox } from "./destroy-sandbox.ts";
import { guestView } from "./rootfs.ts";
import { spawnShim, type ShimTarget } from "./shim-spawn.ts";

export interface CreateOptions {
  id: string;
  bundle: string;
  pidFile?: string;
  consoleSocket?: string;
  preserveFds?: number;
}

const CRI_TYPE = "io.kubernetes.cri.container-type";
const CRI_SANDBOX = "io.kubernetes.cri.sandbox-id";

// A container whose annotations name an existing sandbox joins it; any other
// container gets a sandbox of its own, named after it.
export function sandboxToJoin(bundle: Bundle): string | undefined {
  const a = bundle.spec.annotations ?? {};
  return a[CRI_TYPE] === "container" && a[CRI_SANDBOX] ? validateId(a[CRI_SANDBOX], "sandbox") : undefined;
}

function checkOptions(opts: CreateOptions, bundle: Bundle): void {
  if (opts.preserveFds) throw new HuskError("--preserve-fds is not supported: a VM cannot inherit host fds");
  if (bundle.spec.process?.terminal && !opts.consoleSocket)
    throw new HuskError("process.terminal is true but no --console-socket was given");
  if (!bundle.spec.process?.terminal && opts.consoleSocket)
    throw new HuskError("--console-socket given but process.terminal is false");
}

// `husk create`: the container exists, its process waits for start, and a
// shim stands for it on the host (its pid goes to --pid-file).
export async function createContainer(ctx: Context, opts: CreateOptions): Promise<number> {
  validateId(opts.id);
  const bundle = loadBundle(opts.bundle);
  checkOptions(opts, bundle);
  if (ctx.store.findContainer(opts.id)) throw new HuskError(`container with id ${opts.id} already exists`);
  const join = sandboxToJoin(bundle);
  if (join && !ctx.store.tryLoad(join)) throw new HuskError(`sandbox ${join} named by ${CRI_SANDBOX} does not exist`);
  const sandboxId = join ?? opts.id;
  if (!join) await createSandbox(ctx, { id: sandboxId, hostname: bundle.spec.hostname, annotations: bundle.spec.annotations });
  try {
    await addContainer(ctx, sandboxId, opts, bundle);
    const pid = startShim(ctx, { sandboxId, containerId: opts.id }, opts.consoleSocket);
    await ctx.store.update(sandboxId, (d) => {
      const c = d.containers.find((x) => x.id === opts.id)!;
      c.pid = pid;
      c.pidStartTime = processStartTime(pid);
    });
    if (opts.pidFile) writePidFile(opts.pidFile, pid);
    return pid;
  } catch (e) {
    if (!join) await destroySandbox(ctx, sandboxId, { force: true }).catch(() => {});
    else await dropContainer(ctx, sandboxId, opts.id);
    throw e;
  }
}

// With a console socket, the shim relays a host pty whose master went to
// that socket; the agent's own terminal never leaves the sandbox.
export function startShim(ctx: Context, t: ShimTarget, consoleSocket: string | undefined): number {
  if (!consoleSocket) return spawnShim(ctx, t);
  const slave = handOverTerminal(consoleSocket);
  try {
    return spawnShim(ctx, t, slave);
  } finally {
    closeFd(slave);
  }
}

// Asks the sandbox's agent to create the container and records it.
export async function addContainer(
  ctx: Context,
  sandboxId: string,
  opts: Pick<CreateOptions, "id">,
  bundle: Bundle,
): Promise<void> {
  validateId(opts.id);
  await ctx.store.update(sandboxId, async (doc) => {
    if (doc.containers.some((c) => c.id === opts.id)) throw new HuskError(`container with id ${opts.id} already exists`);
    const view = guestView(doc, opts.id, bundle);
    await withAgent(ctx, doc, (a) =>
      a.rpc.createContainer({
        containerId: opts.id,
        ociSpecJson: JSON.stringify(view.spec),
        rootfs: view.rootfs,
        terminal: bundle.spec.process?.terminal === true,
        openStdin: true,
      }),
    );
    doc.containers.push({
      id: opts.id,
      bundle: bundle.path,
      rootfs: bundle.rootfs,
      state: "created",
      createdAt: new Date().toISOString(),
      process: bundle.spec.process,
      mounts: bundle.spec.mounts,
      annotations: bundle.spec.annotations,
    });
  });
}

async function dropContainer(ctx: Context, sandboxId: string, id: string): Promise<void> {
  await ctx.store
    .update(sandboxId, async (doc) => {
      await withAgent(ctx, doc, (a) => a.rpc.removeContainer({ containerId: id, force: true })).catch(() => {});
      doc.containers = doc.containers.filter((c) => c.id !== id);
    })
    .catch((e) => {
      if (!(e instanceof PersistError)) throw e;
    });
}

// Written atomically: conmon and containerd read it as soon as create returns.
export function writePidFile(path: string, pid: number): void {
  const tmp = join(dirname(path), `.${process.pid}.pid.tmp`);
  writeFileSync(tmp, String(pid));
  renameSync(tmp, path);
}
