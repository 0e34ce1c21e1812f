import { describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import * as v from "valibot";
import { HuskError } from "../../lib/core/index.ts";
import {
  AgentService,
  CAPABILITIES,
  NegotiatedAgentSchema,
  PROTOCOL_VERSION,
  RPC_CAPABILITY,
  connectAgent,
} from "../../lib/protocol/index.ts";
import { serveAgent } from "../../lib/protocol/server/index.ts";
import { createLeanHandler } from "../../lib/protocol/server/connect-fetch.ts";
import { fakeAgent } from "./fake-agent.ts";
import { TRANSPORTS, rawClient, servedPerTest } from "./harness.ts";

const start = servedPerTest();

// What a 0.1.0 agent without the later features would advertise.
const OLD_CAPS = ["health", "sandbox", "containers", "stdio"];

function oldAgent() {
  const { execProcess: _e, pauseContainer: _p, resumeContainer: _r, statsContainer: _s, ...rest } = fakeAgent();
  return rest;
}

describe.each(TRANSPORTS)("negotiation over %s", (kind) => {
  it("returns the agent's version, protocol and capabilities in a storable form", async () => {
    const s = start(kind, fakeAgent(), { agentVersion: "0.3.1" });
    const client = await connectAgent(s.target, { sandboxId: "sb-1" });
    expect(client.negotiated).toEqual({ agentVersion: "0.3.1", protocolVersion: PROTOCOL_VERSION, capabilities: [...CAPABILITIES] });
    const stored = JSON.parse(JSON.stringify(client.negotiated));
    expect(v.parse(NegotiatedAgentSchema, stored)).toEqual(client.negotiated);
    client.close();
  });

  it("an older agent: missing features fail clearly, the rest works", async () => {
    const s = start(kind, oldAgent(), { agentVersion: "0.1.0", capabilities: OLD_CAPS });
    const client = await connectAgent(s.target, { sandboxId: "sb-old" });
    await client.rpc.createContainer({ containerId: "c1", ociSpecJson: "{}", rootfs: { source: { case: "sharedPath", value: "/r" } } });
    await client.rpc.startContainer({ containerId: "c1" });

    const exec = client.rpc.execProcess({ containerId: "c1", execId: "e1", args: ["ls"] });
    await expect(exec).rejects.toThrow(HuskError);
    await expect(exec).rejects.toThrow(
      "agent 0.1.0 in sandbox sb-old lacks capability 'exec'; recreate the sandbox to use it",
    );
    await expect(client.rpc.pauseContainer({ containerId: "c1" })).rejects.toThrow("lacks capability 'pause'");
    await expect(client.rpc.statsContainer({ containerId: "c1" })).rejects.toThrow("lacks capability 'stats'");
    // Field-level features: an overlay rootfs or a terminal needs its own capability.
    await expect(
      client.rpc.createContainer({ containerId: "c2", rootfs: { source: { case: "overlay", value: { lowerDirs: ["/l"] } } } }),
    ).rejects.toThrow("lacks capability 'overlay-rootfs'");
    await expect(client.rpc.createContainer({ containerId: "c3", terminal: true })).rejects.toThrow("lacks capability 'tty'");
    await expect(client.rpc.signalProcess({ containerId: "c1", signal: 9, all: true })).rejects.toThrow("lacks capability 'signal-all'");
    expect(() => client.require("listProcesses")).toThrow("lacks capability 'ps'");

    // Everything advertised still works after the refusals.
    await client.rpc.writeStdin({ containerId: "c1", data: new TextEncoder().encode("hello") });
    await client.rpc.closeStdin({ containerId: "c1" });
    expect((await client.rpc.waitProcess({ containerId: "c1" })).exitStatus).toBe(0);
    await client.rpc.signalProcess({ containerId: "c1", signal: 15 });
    await client.rpc.removeContainer({ containerId: "c1" });
    expect(client.has("exec")).toBe(false);
    expect(client.has("stdio")).toBe(true);
    client.close();
  });

  it("an agent of the previous release configures a network once, but is never asked to configure it again", async () => {
    const s = start(kind, fakeAgent(), { agentVersion: "0.3.0", capabilities: ["health", "network", "network-remac"] });
    const client = await connectAgent(s.target, { sandboxId: "sb-net" });
    const nic = { name: "eth0", mac: "02:00:00:00:00:01", mtu: 1500, addresses: ["10.0.0.2/24"], guestMac: "02:68:75:73:6b:00" };
    await client.rpc.configureNetwork({ interfaces: [nic] });
    await expect(client.rpc.configureNetwork({ interfaces: [nic], replace: true })).rejects.toThrow("lacks capability 'network-reconfigure'");
    client.close();
  });

  it("an agent without 'health' is checked through the handshake instead", async () => {
    const { health: _h, ...impl } = fakeAgent();
    const s = start(kind, impl, { capabilities: ["containers"] });
    const client = await connectAgent(s.target, { sandboxId: "sb-h" });
    await expect(client.rpc.health({})).rejects.toThrow("lacks capability 'health'");
    expect((await client.health()).serving).toBe(true);
    client.close();
  });

  it("the agent answers RPCs it does not implement with Unimplemented and keeps serving", async () => {
    const { execProcess: _e, ...impl } = fakeAgent();
    const s = start(kind, impl, { capabilities: ["health", "containers"] });
    const client = await rawClient(kind, s);
    const err = await client.rpc.execProcess({ containerId: "c" }).catch((e) => e);
    expect(ConnectError.from(err).code).toBe(Code.Unimplemented);
    expect((await client.rpc.health({})).status).toBe(1);
    client.close();
  });

  it("a stored negotiated set is used without a new handshake on the unix path", async () => {
    const s = start(kind, fakeAgent(), { agentVersion: "0.2.0" });
    const stored = { agentVersion: "0.1.0", protocolVersion: 1, capabilities: ["health"] };
    const client = await connectAgent(s.target, { sandboxId: "sb-p", negotiated: stored });
    // Stream connections handshake on every new connection and learn the truth.
    expect(client.negotiated.agentVersion).toBe(kind === "unix" ? "0.1.0" : "0.2.0");
    expect((await client.health()).serving).toBe(true);
    client.close();
  });

  it("streams stdout and stderr to the end", async () => {
    const s = start(kind, fakeAgent());
    const client = await connectAgent(s.target, { sandboxId: "sb-s" });
    await client.rpc.createContainer({ containerId: "c1" });
    await client.rpc.writeStdin({ containerId: "c1", data: new TextEncoder().encode("one ") });
    await client.rpc.writeStdin({ containerId: "c1", data: new TextEncoder().encode("two") });
    let out = "";
    let err = "";
    const eofs: number[] = [];
    for await (const m of client.rpc.streamOutput({ containerId: "c1" })) {
      const text = new TextDecoder().decode(m.data);
      if (m.stream === 1) out += text;
      else err += text;
      if (m.eof) eofs.push(m.stream);
    }
    expect([out, err, eofs]).toEqual(["one two", "done\n", [1, 2]]);
    const bad = async () => {
      for await (const _ of client.rpc.streamOutput({ containerId: "nope" }));
    };
    await expect(bad()).rejects.toThrow(/nope.*does not exist/);
    client.close();
  });
});

describe("handshake checks", () => {
  it("refuses an agent that speaks another protocol version, naming both", async () => {
    const { mkdtempSync, rmSync } = await import("node:fs");
    const dir = mkdtempSync("/tmp/husk-proto-");
    const path = `${dir}/agent.sock`;
    const handler = createLeanHandler(
      AgentService,
      { handshake: () => ({ agentVersion: "2.0.0", protocolVersion: 2, capabilities: ["exec"] }) },
      { readMaxBytes: 1 << 20 },
    );
    const server = Bun.serve({ unix: path, fetch: handler });
    try {
      await expect(connectAgent({ unix: path }, { sandboxId: "sb-v2" })).rejects.toThrow(
        `agent 2.0.0 in sandbox sb-v2 speaks agent protocol 2, this husk speaks ${PROTOCOL_VERSION}`,
      );
    } finally {
      await server.stop(true);
      rmSync(dir, { recursive: true });
    }
  });

  it("an agent cannot advertise a capability it does not implement", () => {
    const { statsContainer: _s, ...impl } = fakeAgent();
    expect(() => serveAgent(impl, { unix: "/tmp/never-used.sock" }, { agentVersion: "0.1.0", capabilities: ["stats"] })).toThrow(
      "agent advertises capability 'stats' but does not implement statsContainer",
    );
  });

  it("a dead agent gives a clear error naming the sandbox", async () => {
    await expect(connectAgent({ unix: "/tmp/husk-no-such-agent.sock" }, { sandboxId: "sb-dead" })).rejects.toThrow(
      /cannot handshake with the agent of sandbox sb-dead: .*cannot reach the agent/,
    );
  });

  it("every RPC but Handshake maps to a known capability", () => {
    for (const m of AgentService.methods) {
      const cap = RPC_CAPABILITY[m.localName as keyof typeof RPC_CAPABILITY];
      if (m.localName === "handshake") expect(cap).toBeNull();
      else expect(CAPABILITIES).toContain(cap);
    }
  });
});
