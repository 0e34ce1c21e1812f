import { afterEach } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createStreamConnection } from "../../lib/protocol/client/http2-transport.ts";
import { createUnixTransport } from "../../lib/protocol/client/unix-transport.ts";
import { AgentService, CAPABILITIES, type AgentTarget } from "../../lib/protocol/index.ts";
import { serveAgent, type AgentImpl, type AgentServer, type ServeOptions } from "../../lib/protocol/server/index.ts";

// Both ways the runtime reaches an agent: the unix fast path (HTTP/1.1) and
// one byte stream carrying HTTP/2, as virtio-serial and hybrid vsock do.
export const TRANSPORTS = ["unix", "stream"] as const;
export type TransportKind = (typeof TRANSPORTS)[number];

export interface Served {
  server: AgentServer;
  target: AgentTarget;
  socket: string;
  close(): Promise<void>;
}

export function serve(kind: TransportKind, impl: AgentImpl, opts: Partial<ServeOptions> = {}): Served {
  const dir = mkdtempSync(join(tmpdir(), "husk-proto-"));
  const socket = join(dir, "agent.sock");
  const full = { agentVersion: "0.1.0", capabilities: [...CAPABILITIES], ...opts };
  const server = serveAgent(impl, { unix: socket, http2: kind === "stream" }, full);
  const target: AgentTarget = kind === "unix" ? { unix: socket } : () => dialUnix(socket);
  return {
    server,
    target,
    socket,
    async close() {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function dialUnix(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(path);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

// A client with no negotiation and no guard, to poke the agent directly.
export async function rawClient(kind: TransportKind, s: Served) {
  const limits = { readMaxBytes: 16 << 20, writeMaxBytes: 16 << 20 };
  if (kind === "unix")
    return { rpc: createClient(AgentService, createUnixTransport({ path: s.socket, ...limits })), close: () => {} };
  const conn = createStreamConnection(await dialUnix(s.socket), limits);
  return { rpc: createClient(AgentService, conn.transport), close: conn.close };
}

// serve() for one test file: every agent started is closed after each test.
export function servedPerTest(): (...a: Parameters<typeof serve>) => Served {
  let served: Served[] = [];
  afterEach(async () => {
    await Promise.all(served.map((s) => s.close()));
    served = [];
  });
  return (...a) => {
    const s = serve(...a);
    served.push(s);
    return s;
  };
}
