import {
  create,
  fromBinary,
  fromJson,
  isMessage,
  toBinary,
  toJson,
  type DescMessage,
  type DescMethod,
  type DescService,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { Code, ConnectError, createHandlerContext, type HandlerContext } from "@connectrpc/connect";
import { codeToHttpStatus, endStreamFlag, endStreamToJson, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";

// A lean server for the Connect protocol (unary and server streaming, proto
// and JSON, no compression) on a fetch-style handler. Connect's universal
// fetch adapter costs about two thirds of a unary call under Bun; this path
// decodes the request body and encodes the reply directly, and stays
// wire-compatible with any Connect client.

type Impl = (req: any, ctx: HandlerContext) => unknown;
interface Route {
  method: DescMethod;
  impl?: Impl;
}

export interface LeanHandlerOptions {
  readMaxBytes: number;
}

const JSON_READ = { ignoreUnknownFields: true };
const enc = new TextEncoder();

export function createLeanHandler(
  service: DescService,
  impl: Record<string, Impl | undefined>,
  opts: LeanHandlerOptions,
): (req: Request) => Promise<Response> {
  const routes = new Map<string, Route>();
  for (const method of service.methods)
    routes.set(`/${service.typeName}/${method.name}`, { method, impl: impl[method.localName] });
  return async (req) => {
    const route = routes.get(pathOf(req.url));
    if (!route) return unaryError(new ConnectError("no such procedure", Code.Unimplemented));
    const streaming = route.method.methodKind === "server_streaming";
    try {
      return await (streaming ? serveStream(route, req, service, opts) : serveUnary(route, req, service, opts));
    } catch (e) {
      const err = ConnectError.from(e);
      return streaming ? streamError(err) : unaryError(err);
    }
  };
}

// "http://agent/pkg.Service/Method" -> "/pkg.Service/Method", without URL parsing.
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const end = url.indexOf("?", start);
  return start < 0 ? "/" : url.slice(start, end < 0 ? undefined : end);
}

type Format = "proto" | "json";

function formatOf(req: Request, streaming: boolean): Format {
  const ct = (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  const prefix = streaming ? "application/connect+" : "application/";
  if (ct === `${prefix}proto`) return "proto";
  if (ct === `${prefix}json`) return "json";
  throw new ConnectError(`unsupported content-type ${JSON.stringify(ct)}`, Code.InvalidArgument);
}

async function readBody(req: Request, max: number): Promise<Uint8Array> {
  if (req.method !== "POST") throw new ConnectError(`method ${req.method} not allowed, use POST`, Code.InvalidArgument);
  const enc = req.headers.get("content-encoding");
  if (enc && enc !== "identity") throw new ConnectError(`compression ${enc} not supported`, Code.Unimplemented);
  const declared = Number(req.headers.get("content-length") ?? 0);
  if (declared > max) throw tooLarge(declared, max);
  const body = new Uint8Array(await req.arrayBuffer());
  if (body.byteLength > max) throw tooLarge(body.byteLength, max);
  return body;
}

const tooLarge = (n: number, max: number) =>
  new ConnectError(`message of ${n} bytes exceeds the limit of ${max} bytes`, Code.ResourceExhausted);

function decode(schema: DescMessage, format: Format, bytes: Uint8Array) {
  try {
    return format === "proto"
      ? fromBinary(schema, bytes)
      : fromJson(schema, JSON.parse(new TextDecoder().decode(bytes)), JSON_READ);
  } catch (e) {
    throw new ConnectError(`cannot decode ${schema.typeName}: ${(e as Error).message}`, Code.InvalidArgument);
  }
}

function encode(schema: DescMessage, format: Format, value: unknown): Uint8Array {
  const msg = isMessage(value, schema) ? value : create(schema, value as MessageInitShape<DescMessage>);
  return format === "proto" ? toBinary(schema, msg) : enc.encode(JSON.stringify(toJson(schema, msg)));
}

function context(service: DescService, route: Route, req: Request) {
  const timeout = Number(req.headers.get("connect-timeout-ms") ?? NaN);
  return createHandlerContext({
    service,
    method: route.method,
    protocolName: "connect",
    requestMethod: req.method,
    url: req.url,
    requestHeader: req.headers,
    // Only the request's own signal: a shared shutdown signal would gain a
    // listener per call that is never removed (measured: calls slow down
    // steadily). Stopping the server aborts every open request anyway.
    requestSignal: req.signal,
    timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout : undefined,
  });
}

function unimplemented(route: Route): never {
  throw new ConnectError(`${route.method.parent.typeName}.${route.method.name} is not implemented by this agent`, Code.Unimplemented);
}

async function serveUnary(route: Route, req: Request, service: DescService, opts: LeanHandlerOptions) {
  const format = formatOf(req, false);
  const input = decode(route.method.input, format, await readBody(req, opts.readMaxBytes));
  if (!route.impl) unimplemented(route);
  const ctx = context(service, route, req);
  const out = encode(route.method.output, format, await route.impl(input, ctx));
  ctx.responseHeader.set("content-type", `application/${format}`);
  return new Response(out, { status: 200, headers: ctx.responseHeader });
}

function unaryError(err: ConnectError): Response {
  return new Response(errorToJsonBytes(err, {}), {
    status: codeToHttpStatus(err.code),
    headers: { "content-type": "application/json" },
  });
}

function envelope(flags: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.byteLength);
  out[0] = flags;
  new DataView(out.buffer).setUint32(1, payload.byteLength);
  out.set(payload, 5);
  return out;
}

const endStream = (err?: ConnectError, trailer = new Headers()) =>
  envelope(endStreamFlag, enc.encode(JSON.stringify(endStreamToJson(trailer, err, {}))));

// Streaming errors travel in the end-stream message with HTTP 200.
function streamError(err: ConnectError): Response {
  return new Response(endStream(err), { status: 200, headers: { "content-type": "application/connect+json" } });
}

function unwrapEnvelope(body: Uint8Array): Uint8Array {
  if (body.byteLength < 5) throw new ConnectError("truncated request envelope", Code.InvalidArgument);
  if (body[0] !== 0) throw new ConnectError(`unsupported envelope flags ${body[0]}`, Code.InvalidArgument);
  const len = new DataView(body.buffer, body.byteOffset).getUint32(1);
  if (body.byteLength !== 5 + len)
    throw new ConnectError(`request envelope declares ${len} bytes, carries ${body.byteLength - 5}`, Code.InvalidArgument);
  return body.subarray(5);
}

async function serveStream(route: Route, req: Request, service: DescService, opts: LeanHandlerOptions) {
  const format = formatOf(req, true);
  const input = decode(route.method.input, format, unwrapEnvelope(await readBody(req, opts.readMaxBytes + 5)));
  if (!route.impl) unimplemented(route);
  const ctx = context(service, route, req);
  const iter = (route.impl(input, ctx) as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  const schema = route.method.output;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await iter.next();
        if (next.done) {
          controller.enqueue(endStream(undefined, ctx.responseTrailer));
          controller.close();
        } else controller.enqueue(envelope(0, encode(schema, format, next.value)));
      } catch (e) {
        controller.enqueue(endStream(ConnectError.from(e), ctx.responseTrailer));
        controller.close();
      }
    },
    async cancel() {
      ctx.abort();
      await iter.return?.();
    },
  });
  ctx.responseHeader.set("content-type", `application/connect+${format}`);
  return new Response(body, { status: 200, headers: ctx.responseHeader });
}
