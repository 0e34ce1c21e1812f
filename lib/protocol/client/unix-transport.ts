import { create, fromBinary, toBinary, type DescMessage, type DescMethodUnary, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport, type UnaryResponse } from "@connectrpc/connect";
import { codeFromHttpStatus, createTransport, errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import { createFetchClient } from "@connectrpc/connect/protocol";

// Connect over HTTP/1.1 on a unix socket through Bun's fetch. Unary calls
// (nearly all agent traffic) take a lean path that encodes and decodes the
// Connect unary protocol directly: Connect's generic client doubles the cost
// of a small call under Bun. Streams use Connect's own transport.

export interface UnixTransportOptions {
  path: string;
  // What the socket leads to, for errors: "the agent of sandbox X through its proxy at P".
  what?: string;
  readMaxBytes: number;
  writeMaxBytes: number;
  defaultTimeoutMs?: number;
}

const BASE = "http://agent";

export function createUnixTransport(opts: UnixTransportOptions): Transport {
  const what = opts.what ?? `the agent at ${opts.path}`;
  // Failures to get through (no socket, nothing listening, a proxy that
  // cannot reach the agent: 502) say what could not be reached, for unary
  // calls and streams alike; the agent's own errors pass as they are.
  const fetchUnix = (async (input: string | URL | Request, init?: RequestInit) => {
    let res: Response;
    try {
      res = await fetch(input, { ...init, unix: opts.path } as RequestInit);
    } catch (e) {
      throw transportError(e, what);
    }
    if (res.status === 502) throw new ConnectError(`cannot reach ${what}: ${await proxyReason(res)}`, Code.Unavailable);
    return res;
  }) as typeof fetch;
  const generic = createTransport({
    httpClient: createFetchClient(fetchUnix),
    baseUrl: BASE,
    useBinaryFormat: true,
    interceptors: [],
    acceptCompression: [],
    sendCompression: null,
    compressMinBytes: Infinity,
    readMaxBytes: opts.readMaxBytes,
    writeMaxBytes: opts.writeMaxBytes,
    defaultTimeoutMs: opts.defaultTimeoutMs,
  });
  return {
    unary: (method, signal, timeoutMs, header, input) =>
      unary(opts, fetchUnix, method, signal, timeoutMs ?? opts.defaultTimeoutMs, header, input),
    stream: generic.stream.bind(generic),
  };
}

async function unary<I extends DescMessage, O extends DescMessage>(
  opts: UnixTransportOptions,
  fetchUnix: typeof fetch,
  method: DescMethodUnary<I, O>,
  signal: AbortSignal | undefined,
  timeoutMs: number | undefined,
  header: ConstructorParameters<typeof Headers>[0],
  input: MessageInitShape<I>,
): Promise<UnaryResponse<I, O>> {
  const body = toBinary(method.input, create(method.input, input));
  if (body.byteLength > opts.writeMaxBytes)
    throw new ConnectError(`message of ${body.byteLength} bytes exceeds the limit of ${opts.writeMaxBytes} bytes`, Code.ResourceExhausted);
  const headers = new Headers(header);
  headers.set("content-type", "application/proto");
  headers.set("connect-protocol-version", "1");
  if (timeoutMs) headers.set("connect-timeout-ms", String(timeoutMs));
  const sig = timeoutMs ? anySignal(signal, AbortSignal.timeout(timeoutMs)) : signal;
  let res: Response;
  let bytes: Uint8Array;
  res = await fetchUnix(`${BASE}/${method.parent.typeName}/${method.name}`, { method: "POST", body, headers, signal: sig });
  try {
    bytes = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw transportError(e, opts.what ?? `the agent at ${opts.path}`);
  }
  if (res.status !== 200) {
    const fallback = new ConnectError(`HTTP ${res.status}`, codeFromHttpStatus(res.status));
    throw errorFromJsonBytes(bytes, res.headers, fallback);
  }
  if (bytes.byteLength > opts.readMaxBytes)
    throw new ConnectError(`reply of ${bytes.byteLength} bytes exceeds the limit of ${opts.readMaxBytes} bytes`, Code.ResourceExhausted);
  return {
    stream: false,
    service: method.parent,
    method,
    header: res.headers,
    trailer: new Headers(),
    message: fromBinary(method.output, bytes),
  };
}

function anySignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  return a ? AbortSignal.any([a, b]) : b;
}

// Why the proxy could not forward the call: its answer's message, or its text.
async function proxyReason(res: Response): Promise<string> {
  const text = (await res.text().catch(() => "")).trim();
  try {
    return String(JSON.parse(text).message ?? text) || "no reason given";
  } catch {
    return text.slice(0, 300) || "no reason given";
  }
}

// Bun's fetch reports a unix socket it cannot use with its URL advice
// ("Was there a typo in the url or port?"): say what happened instead.
const SOCKET_ERRORS: Record<string, string> = {
  ECONNREFUSED: "nothing listens on its socket (the process serving it has exited)",
  ENOENT: "its socket does not exist",
  FailedToOpenSocket: "its socket does not exist or cannot be opened",
  ConnectionRefused: "nothing listens on its socket (the process serving it has exited)",
  ECONNRESET: "the connection was reset",
  ConnectionClosed: "the connection closed before an answer",
  EACCES: "permission denied on its socket",
};

function transportError(e: unknown, what: string): ConnectError {
  if (e instanceof ConnectError) return e;
  const err = e as { name?: string; code?: string; message?: string };
  if (err?.name === "TimeoutError") return new ConnectError(`${what} did not answer in time`, Code.DeadlineExceeded);
  if (err?.name === "AbortError") return new ConnectError("call cancelled", Code.Canceled);
  const why = (err?.code && SOCKET_ERRORS[err.code]) || (err?.message ?? String(e)).replace(/[.:]? ?Was there a typo in the url or port\??/, "");
  return new ConnectError(`cannot reach ${what}: ${why}`, Code.Unavailable);
}
