import type { Duplex } from "node:stream";
import { ConnectError, createClient, type Client, type Transport } from "@connectrpc/connect";
import { ErrorCode, HuskError, VERSION, errorMessage } from "../../core/index.ts";
import { AgentService } from "../gen/husk/agent/v1/agent_pb.ts";
import { CAPABILITIES, PROTOCOL_VERSION, type AgentMethodName } from "../capabilities.ts";
import { fromConnectError } from "../errors.ts";
import { acceptHandshake, capabilityError, missingCapability, type NegotiatedAgent } from "../negotiate.ts";
import { DEFAULT_READ_MAX_BYTES } from "../limits.ts";
import { createStreamConnection, type StreamConnection } from "./http2-transport.ts";
import { createUnixTransport } from "./unix-transport.ts";

// How to reach the agent: a unix socket served by serveAgent({unix}) (HTTP/1.1
// fast path), or a dial function returning one byte stream (HTTP/2), e.g. the
// hypervisor driver's dialAgent.
export type AgentTarget = { unix: string } | (() => Promise<Duplex>);

export interface ConnectOptions {
  sandboxId: string;
  // A negotiated set from persist: skips the handshake on the unix path.
  // Stream connections still handshake first, as every new connection does.
  negotiated?: NegotiatedAgent;
  timeoutMs?: number;
  readMaxBytes?: number;
  // What a unix target leads to, for errors (default: "the agent at <path>").
  what?: string;
}

export type AgentRpc = Client<typeof AgentService>;

export interface AgentClient {
  readonly sandboxId: string;
  // The agent's version, protocol version and capabilities; persist this.
  readonly negotiated: NegotiatedAgent;
  // Every RPC, guarded: a call outside the negotiated set fails with a
  // HuskError naming the sandbox, the agent version and the capability.
  // Every failure, of a unary call or mid-stream, is a HuskError with the
  // agent's ErrorCode.
  readonly rpc: AgentRpc;
  has(capability: string): boolean;
  // Throws the same HuskError the guarded call would.
  require(method: AgentMethodName, request?: object): void;
  // Liveness. Fallback: an agent without 'health' is asked for a handshake.
  health(): Promise<{ serving: boolean; uptimeSeconds?: number }>;
  close(): void;
}

export async function connectAgent(target: AgentTarget, opts: ConnectOptions): Promise<AgentClient> {
  const limits = {
    readMaxBytes: opts.readMaxBytes ?? DEFAULT_READ_MAX_BYTES,
    writeMaxBytes: opts.readMaxBytes ?? DEFAULT_READ_MAX_BYTES,
    defaultTimeoutMs: opts.timeoutMs,
  };
  const state: { negotiated?: NegotiatedAgent } = { negotiated: opts.negotiated };
  const handshake = async (t: Transport) => {
    state.negotiated = await runHandshake(t, opts.sandboxId);
  };
  let base: Transport;
  let close: () => void;
  if (typeof target === "function") {
    const conn = await reconnecting(target, limits, handshake);
    base = conn.transport;
    close = conn.close;
  } else {
    base = createUnixTransport({ path: target.unix, what: opts.what, ...limits });
    if (!state.negotiated) await handshake(base);
    close = () => {};
  }
  const negotiated = () => state.negotiated!;
  const check = (method: AgentMethodName, req?: object) => {
    const cap = missingCapability(negotiated(), method, req);
    if (cap) throw capabilityError(negotiated(), opts.sandboxId, cap);
  };
  const rpc = createClient(AgentService, guarded(base, check));
  return {
    sandboxId: opts.sandboxId,
    get negotiated() {
      return negotiated();
    },
    rpc,
    has: (cap) => negotiated().capabilities.includes(cap),
    require: check,
    async health() {
      if (negotiated().capabilities.includes("health")) {
        const r = await rpc.health({});
        return { serving: r.status === 1, uptimeSeconds: r.uptimeSeconds };
      }
      await rpc.handshake(handshakeRequest());
      return { serving: true };
    },
    close,
  };
}

const handshakeRequest = () => ({
  runtimeVersion: VERSION,
  protocolVersion: PROTOCOL_VERSION,
  capabilities: [...CAPABILITIES],
});

async function runHandshake(t: Transport, sandboxId: string): Promise<NegotiatedAgent> {
  const client = createClient(AgentService, t);
  try {
    return acceptHandshake(await client.handshake(handshakeRequest()), sandboxId);
  } catch (e) {
    if (e instanceof HuskError) throw e;
    const why = e instanceof ConnectError ? fromConnectError(e) : undefined;
    throw new HuskError(`cannot handshake with the agent of sandbox ${sandboxId}: ${why?.message ?? errorMessage(e)}`, {
      code: why?.code ?? ErrorCode.Unavailable,
      cause: e,
    });
  }
}

// Checks each call against the negotiated set before it leaves the process,
// and hands callers a HuskError for every protocol error.
function guarded(t: Transport, check: (m: AgentMethodName, req?: object) => void): Transport {
  return {
    async unary(method, signal, timeoutMs, header, input, ctx) {
      check(method.localName as AgentMethodName, input as object);
      return t.unary(method, signal, timeoutMs, header, input, ctx).catch(rethrow);
    },
    async stream(method, signal, timeoutMs, header, input, ctx) {
      check(method.localName as AgentMethodName);
      const res = await t.stream(method, signal, timeoutMs, header, input, ctx).catch(rethrow);
      return { ...res, message: converted(res.message) };
    },
  };
}

const rethrow = (e: unknown): never => {
  throw e instanceof ConnectError ? fromConnectError(e) : e;
};

// A stream's error arrives while it is read, not when it opens.
async function* converted<T>(messages: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (e) {
    rethrow(e);
  }
}

type Limits = { readMaxBytes: number; writeMaxBytes: number; defaultTimeoutMs?: number };

// One HTTP/2 connection at a time; a call after the stream died dials again
// and handshakes before it is sent.
async function reconnecting(
  dial: () => Promise<Duplex>,
  limits: Limits,
  handshake: (t: Transport) => Promise<void>,
): Promise<{ transport: Transport; close: () => void }> {
  let conn: StreamConnection | undefined;
  let pending: Promise<StreamConnection> | undefined;
  let closed = false;
  const open = async () => {
    const c = createStreamConnection(await dial(), limits);
    try {
      await handshake(c.transport);
    } catch (e) {
      c.close();
      throw e;
    }
    return c;
  };
  const current = async (): Promise<Transport> => {
    if (closed) throw new HuskError("agent connection is closed", { code: ErrorCode.Unavailable });
    if (conn && !conn.dead()) return conn.transport;
    conn?.close();
    conn = undefined;
    pending ??= open().finally(() => (pending = undefined));
    conn = await pending;
    return conn.transport;
  };
  await current();
  return {
    transport: {
      unary: async (...a) => (await current()).unary(...a),
      stream: async (...a) => (await current()).stream(...a),
    },
    close: () => {
      closed = true;
      conn?.close();
    },
  };
}
