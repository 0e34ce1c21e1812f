import { driverFor, type DriverName, type VmState } from "../hypervisor/index.ts";
import { HuskError } from "../core/index.ts";
import { connectAgent, type AgentClient } from "../protocol/client/index.ts";
import type { SandboxDoc } from "../persist/index.ts";
import type { Context } from "./context.ts";

export const vmStateOf = (doc: SandboxDoc): VmState => {
  if (!doc.hypervisor) throw new HuskError(`sandbox ${doc.id} has no running VM or agent (state ${doc.state})`);
  return doc.hypervisor as VmState;
};

// Talks to the sandbox's agent under the capabilities negotiated when the
// sandbox was created: an upgraded runtime keeps to what the old agent offers.
export async function connect(ctx: Context, doc: SandboxDoc): Promise<AgentClient> {
  const vm = vmStateOf(doc);
  // The channel recorded at the handshake: the agent's own socket (local) or
  // the sandbox's proxy in front of a VM's single agent stream.
  const channel = doc.agent?.channel ?? vm.agent;
  const negotiated = doc.agent
    ? { agentVersion: doc.agent.version, protocolVersion: Number(doc.agent.protocolVersion), capabilities: doc.agent.capabilities }
    : undefined;
  if (channel.kind === "unix") return connectAgent({ unix: channel.path }, { sandboxId: doc.id, negotiated });
  const driver = await driverFor(vm.driver as DriverName, ctx.settings);
  return connectAgent(() => driver.dialAgent(vm), { sandboxId: doc.id, negotiated });
}

export async function withAgent<T>(ctx: Context, doc: SandboxDoc, fn: (a: AgentClient) => Promise<T>): Promise<T> {
  const agent = await connect(ctx, doc);
  try {
    return await fn(agent);
  } finally {
    agent.close();
  }
}
