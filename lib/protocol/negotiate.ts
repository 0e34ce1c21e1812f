import * as v from "valibot";
import { ErrorCode, HuskError } from "../core/index.ts";
import { PROTOCOL_VERSION, requiredCapabilities, type AgentMethodName } from "./capabilities.ts";
import type { HandshakeResponse } from "./gen/husk/agent/v1/handshake_pb.ts";

// What the runtime learned from the agent's handshake; the sandbox layer
// stores it in the persist document. Capabilities stay plain strings: a
// newer agent may name ones this release does not know.
export const NegotiatedAgentSchema = v.object({
  agentVersion: v.string(),
  protocolVersion: v.pipe(v.number(), v.integer(), v.minValue(1)),
  capabilities: v.array(v.string()),
});
export type NegotiatedAgent = v.InferOutput<typeof NegotiatedAgentSchema>;

// Checks the agent's answer and turns it into the negotiated set.
export function acceptHandshake(res: HandshakeResponse, sandboxId: string): NegotiatedAgent {
  if (res.protocolVersion !== PROTOCOL_VERSION)
    throw new HuskError(
      `agent ${res.agentVersion || "(unknown version)"} in sandbox ${sandboxId} speaks agent protocol ${res.protocolVersion}, ` +
        `this husk speaks ${PROTOCOL_VERSION}; recreate the sandbox with this husk's agent`,
      { code: ErrorCode.Unimplemented },
    );
  return { agentVersion: res.agentVersion, protocolVersion: res.protocolVersion, capabilities: [...new Set(res.capabilities)] };
}

export function missingCapability(
  agent: NegotiatedAgent,
  method: AgentMethodName,
  req?: object,
): string | undefined {
  return requiredCapabilities(method, req).find((c) => !agent.capabilities.includes(c));
}

export function capabilityError(agent: NegotiatedAgent, sandboxId: string, cap: string): HuskError {
  return new HuskError(
    `agent ${agent.agentVersion} in sandbox ${sandboxId} lacks capability '${cap}'; recreate the sandbox to use it`,
    { code: ErrorCode.Unimplemented },
  );
}
