import type { Duplex } from "node:stream";
import type { Transport } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";

// Connect over HTTP/2 with prior knowledge on one byte stream (virtio-serial,
// hybrid vsock after its CONNECT line, or a unix socket). connect-node's
// session manager takes a createConnection that returns the stream we dialled.

export interface StreamConnection {
  transport: Transport;
  // True once the stream or its HTTP/2 session has gone away.
  dead(): boolean;
  close(): void;
}

const AUTHORITY = "http://agent";

export function createStreamConnection(
  stream: Duplex,
  opts: { readMaxBytes: number; writeMaxBytes: number; defaultTimeoutMs?: number },
): StreamConnection {
  stream.on("error", () => {}); // surfaced to callers through the session
  const manager = new Http2SessionManager(
    AUTHORITY,
    { pingIdleConnection: false },
    { createConnection: () => stream as never },
  );
  const transport = createConnectTransport({
    httpVersion: "2",
    baseUrl: AUTHORITY,
    sessionManager: manager,
    useBinaryFormat: true,
    readMaxBytes: opts.readMaxBytes,
    writeMaxBytes: opts.writeMaxBytes,
    defaultTimeoutMs: opts.defaultTimeoutMs,
  });
  return {
    transport,
    dead: () => stream.destroyed || stream.readableEnded || manager.state() === "error",
    close: () => {
      manager.abort();
      stream.destroy();
    },
  };
}
