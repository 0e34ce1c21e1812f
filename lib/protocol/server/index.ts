import { closeSync, createReadStream, createWriteStream, openSync, rmSync } from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { Duplex } from "node:stream";
import type { ServiceImpl } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { ErrorCode, HuskError } from "../../core/index.ts";
import { hasInput } from "../../sys/index.ts";
import { AgentService } from "../gen/husk/agent/v1/agent_pb.ts";
import { PROTOCOL_VERSION, capabilityRpcs } from "../capabilities.ts";
import { toConnectError } from "../errors.ts";
import { DEFAULT_READ_MAX_BYTES } from "../limits.ts";
import { createLeanHandler } from "./connect-fetch.ts";

// The agent's side of the protocol. Kept out of lib/protocol/index.ts so the
// CLI and the shims, which only call the agent, never load it.
export { DEFAULT_READ_MAX_BYTES };

// Everything but Handshake, which the scaffolding answers itself from
// ServeOptions. Missing methods answer Unimplemented. A method may throw a
// HuskError: its code becomes the call's Connect code (toConnectError).
export type AgentImpl = Partial<Omit<ServiceImpl<typeof AgentService>, "handshake">>;

export interface ServeOptions {
  agentVersion: string;
  // What the handshake advertises; each must be backed by implemented RPCs.
  capabilities: readonly string[];
  readMaxBytes?: number;
  // Called with each handshake (e.g. to log the runtime's version).
  onHandshake?: (runtimeVersion: string, protocolVersion: number) => void;
}

// Where the agent listens:
//  unix    a socket path; HTTP/1.1 (Bun.serve, the fast path) unless http2 is set
//  stream  one already-open byte stream (HTTP/2 with prior knowledge)
//  fd      an open bidirectional file descriptor, e.g. a virtio-serial port
//  device  a character device path (/dev/vport0p1), reopened whenever the
//          host side goes away so the next host connection is served
export type AgentListener =
  | { unix: string; http2?: boolean }
  | { stream: Duplex }
  | { fd: number }
  | { device: string };

export interface AgentServer {
  close(): Promise<void>;
  // For a single stream or fd: settles when the peer goes away, so an agent
  // serving one channel knows when to exit.
  ended?: Promise<void>;
}

export function serveAgent(impl: AgentImpl, listener: AgentListener, opts: ServeOptions): AgentServer {
  const full = withHandshake(impl, opts);
  const readMaxBytes = opts.readMaxBytes ?? DEFAULT_READ_MAX_BYTES;
  if ("unix" in listener && !listener.http2) return serveUnixHttp1(full, listener.unix, readMaxBytes);
  const h2 = createHttp2Server(full, readMaxBytes);
  if ("unix" in listener) return serveUnixHttp2(h2, listener.unix);
  if ("stream" in listener) return serveOneStream(h2, listener.stream);
  if ("fd" in listener) return serveOneStream(h2, fdStream(listener.fd));
  return serveDevice(h2, listener.device);
}

function withHandshake(impl: AgentImpl, opts: ServeOptions): Record<string, any> {
  for (const cap of opts.capabilities) {
    const missing = capabilityRpcs(cap).filter((m) => !(impl as Record<string, unknown>)[m]);
    if (missing.length)
      throw new HuskError(`agent advertises capability '${cap}' but does not implement ${missing.join(", ")}`, {
        code: ErrorCode.Internal,
      });
  }
  return {
    ...withErrorCodes(impl),
    handshake: (req: { runtimeVersion: string; protocolVersion: number }) => {
      opts.onHandshake?.(req.runtimeVersion, req.protocolVersion);
      return { agentVersion: opts.agentVersion, protocolVersion: PROTOCOL_VERSION, capabilities: [...opts.capabilities] };
    },
  };
}

type Handler = (req: unknown, ctx: unknown) => unknown;

// Every method's errors as Connect errors with the code of their ErrorCode,
// mid-stream ones included.
function withErrorCodes(impl: AgentImpl): Record<string, Handler> {
  const out: Record<string, Handler> = {};
  for (const method of AgentService.methods) {
    const fn = (impl as Record<string, Handler | undefined>)[method.localName];
    if (!fn) continue;
    out[method.localName] =
      method.methodKind === "server_streaming"
        ? async function* (req, ctx) {
            try {
              yield* fn(req, ctx) as AsyncIterable<unknown>;
            } catch (e) {
              throw toConnectError(e);
            }
          }
        : async (req, ctx) => {
            try {
              return await fn(req, ctx);
            } catch (e) {
              throw toConnectError(e);
            }
          };
  }
  return out;
}

function serveUnixHttp1(impl: Record<string, any>, path: string, readMaxBytes: number): AgentServer {
  rmSync(path, { force: true });
  const server = Bun.serve({
    unix: path,
    // Above our own limit so an oversized call gets a Connect error, not a bare 413.
    maxRequestBodySize: readMaxBytes + 64 * 1024,
    // Wait and output calls stay open as long as a container runs; Bun's
    // default (10 s idle) would cut them.
    idleTimeout: 0 as never, // honoured on unix sockets (measured), though Bun's types omit it
    fetch: createLeanHandler(AgentService, impl, { readMaxBytes }),
    error: () => new Response("bad request", { status: 400 }),
  });
  return {
    async close() {
      await server.stop(true);
      rmSync(path, { force: true });
    },
  };
}

function createHttp2Server(impl: Record<string, any>, readMaxBytes: number): http2.Http2Server {
  const handler = connectNodeAdapter({
    routes: (router) => router.service(AgentService, impl),
    readMaxBytes,
    connect: true,
    grpc: false,
    grpcWeb: false,
  });
  // Measured: Bun counts frames connect-node sends after each finished call as
  // invalid, and the default limit (1000) kills the session at call 1001.
  const server = http2.createServer({ maxSessionInvalidFrames: 2 ** 31 }, handler);
  // A broken peer must not take the agent down: errors end that session only.
  server.on("sessionError", () => {});
  server.on("error", () => {});
  return server;
}

function serveUnixHttp2(h2: http2.Http2Server, path: string): AgentServer {
  rmSync(path, { force: true });
  const sockets = new Set<Duplex>();
  const listener = net.createServer((sock) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
    sock.on("error", () => {});
    h2.emit("connection", sock);
  });
  listener.listen(path);
  return {
    async close() {
      const closed = new Promise<void>((r) => listener.close(() => r()));
      await closeHttp2(h2, [...sockets]);
      await closed;
      rmSync(path, { force: true });
    },
  };
}

function serveOneStream(h2: http2.Http2Server, stream: Duplex): AgentServer {
  const ended = new Promise<void>((resolve) => {
    stream.once("close", resolve);
    stream.once("end", resolve);
  });
  h2.emit("connection", stream);
  return { close: () => closeHttp2(h2, [stream]), ended };
}

async function closeHttp2(h2: http2.Http2Server, streams: Duplex[]): Promise<void> {
  for (const s of streams) s.destroy();
  h2.close();
}

// A Duplex over a file descriptor: blocking reads run on the thread pool,
// which suits character devices that do not support non-blocking I/O.
function fdStream(fd: number, onEnd?: () => void): Duplex {
  const readable = createReadStream("", { fd, autoClose: false, highWaterMark: 64 * 1024 });
  const writable = createWriteStream("", { fd, autoClose: false });
  // Once, however the stream ends: at end of input, or destroyed by the
  // HTTP/2 session over it (a peer that sent garbage) — else nobody reopens.
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    onEnd?.();
  };
  const stream: Duplex = new Duplex({
    read: () => void readable.resume(),
    write: (chunk, _enc, cb) => void writable.write(chunk, cb),
    final: (cb) => cb(),
    destroy: (err, cb) => {
      readable.destroy();
      writable.destroy();
      cb(err);
      finish();
    },
  });
  readable.on("data", (d) => {
    if (!stream.push(d)) readable.pause();
  });
  const ended = () => {
    stream.push(null);
    finish();
  };
  readable.on("end", ended);
  readable.on("error", ended);
  writable.on("error", () => stream.destroy());
  stream.on("error", () => {});
  return stream;
}

const REOPEN_DELAY_MS = 100;
const HOST_POLL_MS = 20;

// A session starts only once the host has sent something (its preface). A
// session started while no host is connected writes its SETTINGS into a
// port that blocks the write until a host comes, and reads end at once: the
// stuck write keeps the port busy and hands a later host a dead session's
// SETTINGS. This is the state a VM saved without a host connection (a
// template) would wake in.
function serveDevice(h2: http2.Http2Server, path: string): AgentServer {
  let closed = false;
  let current: { fd: number; stream?: Duplex } | undefined;
  const open = () => {
    if (closed) return;
    let fd: number;
    try {
      fd = openSync(path, "r+");
    } catch {
      setTimeout(open, REOPEN_DELAY_MS * 10);
      return;
    }
    current = { fd };
    const waitForHost = () => {
      if (closed || current?.fd !== fd) return;
      if (hasInput(fd)) serve(fd);
      else setTimeout(waitForHost, HOST_POLL_MS);
    };
    waitForHost();
  };
  const serve = (fd: number) => {
    // End and error may both fire, and the fd number may already be reused by
    // the next open: act once per stream, and close on a later tick so no
    // read still in flight hits a descriptor that is gone.
    let ended = false;
    const stream = fdStream(fd, () => {
      if (ended) return;
      ended = true;
      if (current?.stream === stream) current = undefined;
      stream.destroy();
      setTimeout(() => {
        try {
          closeSync(fd);
        } catch {}
        open();
      }, REOPEN_DELAY_MS);
    });
    current = { fd, stream };
    h2.emit("connection", stream);
  };
  open();
  return {
    async close() {
      closed = true;
      const c = current;
      current = undefined;
      if (c) {
        c.stream?.destroy();
        try {
          closeSync(c.fd);
        } catch {}
      }
      h2.close();
    },
  };
}
