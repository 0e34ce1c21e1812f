// The relay: how a container process's stand-in on the host (`husk shim`)
// reaches the agent, by itself or through its sandbox's proxy.
export { ownIO, writeOwn, type ShimIO } from "./io.ts";
export { relayThroughProxy, type RelayEnd } from "./client.ts";
export { serveRelay, type RelayServer, type RelaySession } from "./server.ts";
