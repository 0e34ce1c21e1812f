import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { HuskError, validateId } from "../core/index.ts";
import { driverFor, resolveDriverName, type VmSpec } from "../hypervisor/index.ts";
import { newSandboxDoc, type SandboxDoc } from "../persist/index.ts";
import { connectAgent } from "../protocol/client/index.ts";
import { attachProxy } from "./proxy.ts";
import { socketDir } from "./paths.ts";
import type { Context } from "./context.ts";
import { destroySandbox } from "./destroy-sandbox.ts";

export interface SandboxOptions {
  id: string;
  hostname?: string;
  annotations?: Record<string, string>;
  cpus?: number;
  memoryMiB?: number;
}

// Starts the VM (or, for `local`, the agent process), handshakes with the agent
// and records everything in the sandbox's persist document. The document is
// saved as "creating" before anything starts, so a crash leaves a trace that
// `husk gc` or `delete --force` can clean up.
export async function createSandbox(ctx: Context, opts: SandboxOptions): Promise<SandboxDoc> {
  validateId(opts.id, "sandbox");
  const driverName = resolveDriverName(ctx.settings);
  const dir = ctx.store.sandboxDir(opts.id);
  const sharedDir = join(dir, "shared");
  const doc = newSandboxDoc({
    id: opts.id,
    config: { cpus: opts.cpus ?? 1, memoryMiB: opts.memoryMiB ?? 256, hypervisor: ctx.settings.hypervisor, sharedDir },
    annotations: opts.annotations,
  });
  await ctx.store.create(doc);
  try {
    const vmDir = socketDir(ctx, opts.id);
    return await bootSandbox(ctx, doc, driverName, { sandboxId: opts.id, vmDir, sharedDir, cpus: doc.config.cpus!, memoryMiB: doc.config.memoryMiB! }, opts.hostname);
  } catch (e) {
    await destroySandbox(ctx, opts.id, { force: true }).catch(() => {});
    throw e;
  }
}

// virtiofsd serves the directory from a mount namespace of its own; rootfs
// binds made there later reach it only if the directory is a shared mount.
export function makeSharedMount(dir: string): void {
  for (const args of [["--bind", dir, dir], ["--make-shared", dir]]) {
    const r = spawnSync("mount", args, { encoding: "utf8" });
    if (r.status !== 0) throw new HuskError(`mount ${args.join(" ")}: ${(r.stderr ?? "").trim()}`);
  }
}

async function bootSandbox(
  ctx: Context,
  doc: SandboxDoc,
  driverName: Parameters<typeof driverFor>[0],
  spec: VmSpec,
  hostname?: string,
): Promise<SandboxDoc> {
  mkdirSync(spec.sharedDir, { recursive: true, mode: 0o700 });
  if (driverName !== "local") makeSharedMount(spec.sharedDir);
  const driver = await driverFor(driverName, ctx.settings);
  const vm = await driver.start(spec);
  // Recorded at once, so a failure from here on is cleaned up with the VM.
  const d = await ctx.store.update(doc.id, (x) => {
    x.hypervisor = vm as SandboxDoc["hypervisor"];
  });
  const channel = vm.agent.kind === "unix" ? vm.agent : await attachProxy(ctx, d);
  return ctx.store.update(doc.id, async (x) => {
    const agent = await connectAgent({ unix: channel.path }, { sandboxId: x.id });
    try {
      const n = agent.negotiated;
      x.agent = {
        channel,
        version: n.agentVersion,
        protocolVersion: String(n.protocolVersion),
        capabilities: n.capabilities,
        connectedAt: new Date().toISOString(),
      };
      if (agent.has("sandbox")) await agent.rpc.setupSandbox({ sandboxId: x.id, hostname: hostname ?? "" });
    } finally {
      agent.close();
    }
    x.state = "running";
  });
}
