import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { validateId } from "../core/index.ts";
import { driverFor, resolveDriverName, type VmSpec } from "../hypervisor/index.ts";
import { newSandboxDoc, type SandboxDoc } from "../persist/index.ts";
import { connect } from "./agent.ts";
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
    config: { cpus: opts.cpus ?? 1, memoryMiB: opts.memoryMiB ?? 512, hypervisor: ctx.settings.hypervisor, sharedDir },
    annotations: opts.annotations,
  });
  await ctx.store.create(doc);
  try {
    return await bootSandbox(ctx, doc, driverName, { sandboxId: opts.id, vmDir: dir, sharedDir, cpus: doc.config.cpus!, memoryMiB: doc.config.memoryMiB! }, opts.hostname);
  } catch (e) {
    await destroySandbox(ctx, opts.id, { force: true }).catch(() => {});
    throw e;
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
  const driver = await driverFor(driverName, ctx.settings);
  const vm = await driver.start(spec);
  return ctx.store.update(doc.id, async (d) => {
    d.hypervisor = vm as SandboxDoc["hypervisor"];
    const agent = await connect(ctx, d);
    try {
      const n = agent.negotiated;
      d.agent = {
        channel: vm.agent,
        version: n.agentVersion,
        protocolVersion: String(n.protocolVersion),
        capabilities: n.capabilities,
        connectedAt: new Date().toISOString(),
      };
      if (agent.has("sandbox")) await agent.rpc.setupSandbox({ sandboxId: d.id, hostname: hostname ?? "" });
    } finally {
      agent.close();
    }
    d.state = "running";
  });
}
