import { errorMessage, log } from "../core/index.ts";
import type { ContainerStatus } from "../oci/index.ts";
import type { ContainerDoc, SandboxDoc } from "../persist/index.ts";
import { statusFromMsg } from "../protocol/index.ts";
import { withAgent } from "./agent.ts";
import type { Context } from "./context.ts";

const AGENT_STATUS_TIMEOUT_MS = 5000;

// An agent without GetContainerState (0.1.0) answers stats only for a live
// container. No answer at all (VM or agent gone) means nothing runs.
export async function agentStatus(ctx: Context, doc: SandboxDoc, c: ContainerDoc): Promise<ContainerStatus> {
  try {
    return await withAgent(ctx, doc, async (a) => {
      if (!a.has("container-state")) return (await a.rpc.statsContainer({ containerId: c.id }), c.state);
      const r = await a.rpc.getContainerState({ containerId: c.id });
      return statusFromMsg(r.status) ?? "stopped";
    }, { timeoutMs: AGENT_STATUS_TIMEOUT_MS });
  } catch (e) {
    log.debug(`container ${c.id}: the agent does not know it as live: ${errorMessage(e)}`);
    return "stopped";
  }
}
