import http2 from "node:http2";
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StartContainerRequestSchema, connectAgent } from "../../lib/protocol/index.ts";
import { fakeAgent } from "./fake-agent.ts";
import { dialUnix, serve, type Served } from "./harness.ts";

const LIMIT = 16 * 1024 * 1024;
const PATH = "/husk.agent.v1.AgentService";
const enc = new TextEncoder();

// StartContainerRequest whose container_id claims 50 bytes but carries 3.
const TRUNCATED = new Uint8Array([0x0a, 50, 0x61, 0x62, 0x63]);
const startReq = (id: string) => toBinary(StartContainerRequestSchema, create(StartContainerRequestSchema, { containerId: id }));

async function stillServes(s: Served, kind: "unix" | "stream") {
  const client = await connectAgent(s.target, { sandboxId: `after-${kind}` });
  expect((await client.rpc.health({})).status).toBe(1);
  client.close();
}

// Writes raw bytes to the socket and collects everything until the server closes.
async function rawExchange(path: string, bytes: Uint8Array | string, timeoutMs = 10_000): Promise<string> {
  const sock = await dialUnix(path);
  return new Promise((resolve) => {
    let got = "";
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, timeoutMs);
    sock.on("data", (d) => {
      got += d.toString("latin1");
      // One complete response is enough; the server may keep the connection open.
      const head = got.indexOf("\r\n\r\n");
      const len = /content-length: (\d+)/i.exec(got)?.[1];
      if (head >= 0 && len !== undefined && got.length >= head + 4 + Number(len)) done();
    });
    sock.on("close", done);
    sock.on("error", done);
    sock.write(bytes);
  });
}

function httpPost(method: string, contentType: string, body: Uint8Array | string): Uint8Array {
  const b = typeof body === "string" ? enc.encode(body) : body;
  const head = `POST ${PATH}/${method} HTTP/1.1\r\nHost: agent\r\nContent-Type: ${contentType}\r\nContent-Length: ${b.byteLength}\r\n\r\n`;
  const out = new Uint8Array(head.length + b.byteLength);
  out.set(enc.encode(head));
  out.set(b, head.length);
  return out;
}

const bodyOf = (response: string) => JSON.parse(response.slice(response.indexOf("\r\n\r\n") + 4));

describe("bad input on the unix socket (HTTP/1.1)", () => {
  let s: Served;
  beforeAll(() => {
    s = serve("unix", fakeAgent());
  });
  afterAll(() => s.close());

  it("garbage bytes get an HTTP error and the agent keeps serving", async () => {
    const res = await rawExchange(s.socket, "\x00\xff\x13garbage that is not HTTP\r\n\r\n");
    expect(res).toMatch(/^HTTP\/1\.1 4\d\d/);
    await stillServes(s, "unix");
  });

  it("a truncated message is invalid_argument", async () => {
    const res = await rawExchange(s.socket, httpPost("StartContainer", "application/proto", TRUNCATED));
    expect(res).toMatch(/^HTTP\/1\.1 400/);
    expect(bodyOf(res)).toMatchObject({ code: "invalid_argument", message: expect.stringContaining("StartContainerRequest") });
    await stillServes(s, "unix");
  });

  it("a message over the 16 MiB limit is resource_exhausted", async () => {
    const big = new Uint8Array(LIMIT + 1024);
    const res = await rawExchange(s.socket, httpPost("WriteStdin", "application/proto", big));
    expect(res).toMatch(/^HTTP\/1\.1 429/);
    expect(bodyOf(res)).toMatchObject({ code: "resource_exhausted", message: expect.stringContaining(`limit of ${LIMIT} bytes`) });
    await stillServes(s, "unix");
  });

  it("an unknown container id is not_found", async () => {
    const res = await rawExchange(s.socket, httpPost("StartContainer", "application/json", '{"containerId":"ghost"}'));
    expect(res).toMatch(/^HTTP\/1\.1 404/);
    expect(bodyOf(res)).toMatchObject({ code: "not_found", message: expect.stringContaining("ghost") });
    await stillServes(s, "unix");
  });

  it("an unknown procedure is unimplemented", async () => {
    const res = await rawExchange(s.socket, httpPost("SelfDestruct", "application/json", "{}"));
    expect(bodyOf(res)).toMatchObject({ code: "unimplemented" });
    await stillServes(s, "unix");
  });

  it("a truncated stream envelope is invalid_argument", async () => {
    const envelope = new Uint8Array([0, 0, 0, 0, 100, 1, 2, 3]);
    const res = await rawExchange(s.socket, httpPost("StreamOutput", "application/connect+proto", envelope));
    expect(res).toMatch(/^HTTP\/1\.1 200/);
    expect(res).toContain("invalid_argument");
    await stillServes(s, "unix");
  });
});

describe("bad input on a byte stream (HTTP/2)", () => {
  let s: Served;
  beforeAll(() => {
    s = serve("stream", fakeAgent());
  });
  afterAll(() => s.close());

  // One call on a fresh HTTP/2 connection, bytes as given.
  async function h2Call(method: string, body: Uint8Array) {
    const sock = await dialUnix(s.socket);
    const session = http2.connect("http://agent", { createConnection: () => sock });
    session.on("error", () => {});
    try {
      return await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = session.request({ ":method": "POST", ":path": `${PATH}/${method}`, "content-type": "application/proto" });
        let status = 0;
        let text = "";
        req.on("response", (h) => (status = Number(h[":status"])));
        req.on("data", (d) => (text += d));
        req.on("end", () => resolve({ status, body: text }));
        req.on("error", reject);
        req.end(body);
      });
    } finally {
      session.destroy();
    }
  }

  it("garbage bytes end that connection only", async () => {
    const res = await rawExchange(s.socket, "\x00\xff\x13garbage that is not an HTTP/2 preface\r\n\r\n", 5000);
    expect(res.length).toBeLessThan(200); // a GOAWAY frame at most, then the connection closes
    await stillServes(s, "stream");
  });

  it("a truncated message gets an error response", async () => {
    const res = await h2Call("StartContainer", TRUNCATED);
    // connect-node's handler reports a request it cannot parse as internal.
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(JSON.parse(res.body)).toMatchObject({ message: expect.stringMatching(/parse binary/) });
    await stillServes(s, "stream");
  });

  it("a message over the 16 MiB limit is resource_exhausted", async () => {
    const res = await h2Call("WriteStdin", new Uint8Array(LIMIT + 1024));
    expect(JSON.parse(res.body)).toMatchObject({ code: "resource_exhausted" });
    await stillServes(s, "stream");
  });

  it("an unknown container id is not_found", async () => {
    const res = await h2Call("StartContainer", startReq("ghost"));
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body)).toMatchObject({ code: "not_found", message: expect.stringContaining("ghost") });
    await stillServes(s, "stream");
  });
});
