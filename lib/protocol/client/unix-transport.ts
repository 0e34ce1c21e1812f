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
  readMaxBytes: number;
  writeMaxBytes: number;
  defaultTimeoutMs?: number;
}

const BASE = "http://agent";

export function createUnixTransport(opts: UnixTransportOptions): Transport {
  const fetchUnix = ((input: string | URL | Request, init?: RequestInit) =>
    fetch(input, { ...init, unix: opts.path } as RequestInit)) as typeof fetch;
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
  try {
    res = await fetchUnix(`${BASE}/${method.parent.typeName}/${method.name}`, { method: "POST", body, headers, signal: sig });
    bytes = new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    throw transportError(e, opts.path);
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

function transportError(e: unknown, path: string): ConnectError {
  const err = e as { name?: string; code?: string; message?: string };
  if (err?.name === "TimeoutError") return new ConnectError("agent did not answer in time", Code.DeadlineExceeded);
  if (err?.name === "AbortError") return new ConnectError("call cancelled", Code.Canceled);
  return new ConnectError(`cannot reach the agent at ${path}: ${err?.message ?? String(e)}`, Code.Unavailable);
}
