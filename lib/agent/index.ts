// The agent: its container engine, and the protocol service over it.
export * from "./engine/index.ts";
export { agentService, AGENT_CAPABILITIES, type ServiceOptions } from "./service.ts";
export { runAgent, type AgentOptions } from "./run.ts";
