// The agent protocol: generated service and messages, capability table,
// server scaffolding (serveAgent) and negotiated client (connectAgent).
export * from "./gen/husk/agent/v1/agent_pb.ts";
export * from "./gen/husk/agent/v1/container_pb.ts";
export * from "./gen/husk/agent/v1/handshake_pb.ts";
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
export {
  DEFAULT_READ_MAX_BYTES,
  serveAgent,
  type AgentImpl,
  type AgentListener,
  type AgentServer,
  type ServeOptions,
} from "./server/index.ts";
export {
  connectAgent,
  type AgentClient,
  type AgentRpc,
  type AgentTarget,
  type ConnectOptions,
} from "./client/index.ts";
