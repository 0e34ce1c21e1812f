import { spawn } from "node:child_process";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { connectAgent } from "../../lib/protocol/index.ts";
import { BUN } from "../helpers/husk.ts";
import { fakeAgent } from "./fake-agent.ts";
import { dialUnix, serve, type Served } from "./harness.ts";

let served: Served | undefined;
afterEach(async () => {
  await served?.close();
  served = undefined;
});

describe("agent transports", () => {
  it("serves HTTP/2 on an inherited fd and exits when the peer closes it", async () => {
    const child = spawn(BUN, [join(import.meta.dirname, "fixtures", "fd-agent.ts")], {
      stdio: ["ignore", "inherit", "inherit", "pipe"],
    });
    const exited = new Promise<number | null>((r) => child.on("exit", r));
    try {
      const client = await connectAgent(async () => child.stdio[3] as Duplex, { sandboxId: "sb-fd" });
      expect(client.negotiated.agentVersion).toBe("0.1.0-fd");
      await client.rpc.createContainer({ containerId: "c1" });
      expect((await client.rpc.listProcesses({ containerId: "c1" })).processes[0]?.pid).toBe(4242);
      client.close();
      expect(await exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("redials and handshakes again when the byte stream dies", async () => {
    let handshakes = 0;
    served = serve("stream", fakeAgent(), { onHandshake: () => handshakes++ });
    const socket = served.socket;
    const dialled: Duplex[] = [];
    const client = await connectAgent(
      async () => {
        const s = await dialUnix(socket);
        dialled.push(s);
        return s;
      },
      { sandboxId: "sb-re" },
    );
    await client.rpc.createContainer({ containerId: "c1" });
    dialled[0]!.destroy(); // the VM's channel dropped
    await new Promise((r) => setTimeout(r, 20));
    await client.rpc.startContainer({ containerId: "c1" });
    expect([dialled.length, handshakes]).toEqual([2, 2]);
    client.close();
  });

  it("one HTTP/2 connection outlives a thousand calls", async () => {
    served = serve("stream", fakeAgent());
    const client = await connectAgent(() => dialUnix(served!.socket), { sandboxId: "sb-long" });
    for (let i = 0; i < 1100; i++) await client.rpc.health({});
    expect((await client.health()).serving).toBe(true);
    client.close();
  });

  it("closing the client makes further calls fail clearly", async () => {
    served = serve("stream", fakeAgent());
    const client = await connectAgent(() => dialUnix(served!.socket), { sandboxId: "sb-c" });
    client.close();
    await expect(client.rpc.health({})).rejects.toThrow("agent connection is closed");
  });
});
