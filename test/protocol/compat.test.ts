import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStreamConnection } from "../../lib/protocol/client/http2-transport.ts";
import { createUnixTransport } from "../../lib/protocol/client/unix-transport.ts";
import { AgentService, HealthRequestSchema, HealthResponseSchema, connectAgent } from "../../lib/protocol/index.ts";
import type { AgentImpl } from "../../lib/protocol/server/index.ts";
import { REPO } from "../helpers/husk.ts";
import { fakeAgent } from "./fake-agent.ts";
import { TRANSPORTS, dialUnix, servedPerTest, type Served } from "./harness.ts";

const LIMITS = { readMaxBytes: 16 << 20, writeMaxBytes: 16 << 20 };
const start = servedPerTest();

async function clientFor<S extends DescService>(service: S, kind: (typeof TRANSPORTS)[number], s: Served) {
  if (kind === "unix") return { rpc: createClient(service, createUnixTransport({ path: s.socket, ...LIMITS })), close: () => {} };
  const conn = createStreamConnection(await dialUnix(s.socket), LIMITS);
  return { rpc: createClient(service, conn.transport), close: conn.close };
}

// A client generated from the committed 0.1.0 baseline image, as an older
// runtime would have it, against the agent built from this tree.
describe("a runtime built from the baseline proto", () => {
  const dir = mkdtempSync(join(tmpdir(), "husk-baseline-"));
  let Baseline: DescService;
  beforeAll(async () => {
    symlinkSync(join(REPO, "node_modules"), join(dir, "node_modules"));
    const template = {
      version: "v2",
      plugins: [{ local: join(REPO, "node_modules/.bin/protoc-gen-es"), out: join(dir, "gen"), opt: ["target=ts", "import_extension=ts"] }],
    };
    const r = spawnSync(
      join(REPO, "node_modules/.bin/buf"),
      ["generate", join(REPO, "proto/baseline/husk-agent-v1.binpb"), "--template", JSON.stringify(template)],
      { cwd: REPO, encoding: "utf8", timeout: 60_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    Baseline = (await import(join(dir, "gen/husk/agent/v1/agent_pb.ts"))).AgentService;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(TRANSPORTS)("works against the current agent over %s", async (kind) => {
    const s = start(kind, fakeAgent(), { agentVersion: "9.9.9" });
    const c = await clientFor(Baseline, kind, s);
    const rpc = c.rpc as any;
    const hs = await rpc.handshake({ runtimeVersion: "0.1.0", protocolVersion: 1 });
    expect(hs.agentVersion).toBe("9.9.9");
    expect(hs.capabilities).toContain("containers");
    expect((await rpc.createContainer({ containerId: "b1", ociSpecJson: "{}" })).pid).toBe(4242);
    await rpc.startContainer({ containerId: "b1" });
    await rpc.signalProcess({ containerId: "b1", signal: 9 });
    expect(await rpc.waitProcess({ containerId: "b1" })).toMatchObject({ exitStatus: 137, signal: 9 });
    await rpc.removeContainer({ containerId: "b1" });
    c.close();
  });
});

// A message from a newer peer: HealthRequest/HealthResponse carrying a field
// this release does not know (number 99, a string).
function withUnknownField<T extends DescMessage>(schema: T, init: object) {
  const msg = create(schema, init as never);
  msg.$unknown = [{ no: 99, wireType: 2, data: new Uint8Array([5, 104, 101, 108, 108, 111]) }];
  return msg;
}

describe.each(TRANSPORTS)("unknown fields over %s", (kind) => {
  it("the agent accepts and ignores unknown fields in a request", async () => {
    const seen: number[] = [];
    const impl: AgentImpl = {
      health: (req) => {
        seen.push(req.$unknown?.length ?? 0);
        return { status: 1 };
      },
    };
    const s = start(kind, impl, { capabilities: ["health"] });
    const c = await clientFor(AgentService, kind, s);
    const res = await c.rpc.health(withUnknownField(HealthRequestSchema, {}));
    expect(res.status).toBe(1);
    expect(seen).toEqual([1]); // it arrived, and did not get in the way
    c.close();
  });

  it("the client accepts and ignores unknown fields in a reply", async () => {
    const impl: AgentImpl = { health: () => withUnknownField(HealthResponseSchema, { status: 1, uptimeSeconds: 7 }) };
    const s = start(kind, impl, { capabilities: ["health"] });
    const client = await connectAgent(s.target, { sandboxId: "sb-u" });
    expect(await client.health()).toEqual({ serving: true, uptimeSeconds: 7 });
    client.close();
  });
});

describe("unknown fields in JSON", () => {
  it("the agent ignores unknown JSON fields", async () => {
    const s = start("unix", fakeAgent());
    const res = await fetch("http://agent/husk.agent.v1.AgentService/Handshake", {
      unix: s.socket,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ runtimeVersion: "0.9.0", protocolVersion: 1, futureField: { nested: true } }),
    } as RequestInit);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { agentVersion: string }).agentVersion).toBe("0.1.0");
  });
});
