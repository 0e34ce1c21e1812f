// The agent protocol as callers see it: generated service and messages,
// capability table, error mapping and the negotiated client (connectAgent).
// The agent's side (serveAgent) is lib/protocol/server/index.ts, so callers
// never load server code.
export * from "./gen/husk/agent/v1/agent_pb.ts";
export * from "./gen/husk/agent/v1/container_pb.ts";
export * from "./gen/husk/agent/v1/handshake_pb.ts";
export * from "./gen/husk/agent/v1/network_pb.ts";
export * from "./gen/husk/agent/v1/process_pb.ts";
export * from "./gen/husk/agent/v1/sandbox_pb.ts";
export {
  CAPABILITIES,
  PROTOCOL_VERSION,
  RPC_CAPABILITY,
  capabilityRpcs,
  requiredCapabilities,
  type AgentMethodName,
  type Capability,
} from "./capabilities.ts";
export {
  NegotiatedAgentSchema,
  acceptHandshake,
  capabilityError,
  missingCapability,
  type NegotiatedAgent,
} from "./negotiate.ts";
export { DEFAULT_READ_MAX_BYTES } from "./limits.ts";
export { CONNECT_CODE, fromConnectError, toConnectError } from "./errors.ts";
export { statusFromMsg, statusToMsg } from "./status.ts";
export {
  connectAgent,
  type AgentClient,
  type AgentRpc,
  type AgentTarget,
  type ConnectOptions,
} from "./client/index.ts";
