import http2 from "node:http2";
import net from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { serveProxy, type ProxyServer } from "../../lib/protocol/proxy.ts";

// The guest's end of a VM's agent channel, played on a unix socket. A
// virtio-serial port is one byte stream that outlives the agent's HTTP/2
// sessions over it: when a session dies, the agent starts another on the
// same port, and the host's connection stays up.
function guestSessions(sock: net.Socket, h2: http2.Http2Server): void {
  const onData = (chunk: Buffer) => stream.push(chunk);
  const onClose = () => stream.destroy();
  const stream = new Duplex({
    read() {},
    write: (chunk, _enc, cb) => void sock.write(chunk, cb),
    destroy(err, cb) {
      sock.off("data", onData).off("close", onClose);
      cb(err);
      if (!sock.destroyed) setImmediate(() => guestSessions(sock, h2));
    },
  });
  sock.on("data", onData);
  sock.on("close", onClose);
  stream.on("error", () => {}); // the proxy hangs up on sessions it gave up on
  h2.emit("connection", stream);
}

let proxy: ProxyServer | undefined;
const open: net.Server[] = [];
afterEach(async () => {
  await proxy?.close();
  for (const s of open) s.close();
});

describe("the agent proxy", () => {
  it("dials again when the guest lost a new connection's first bytes, and the call is answered", async () => {
    const dir = mkdtempSync(join(tmpdir(), "husk-proxy-"));
    const h2 = http2.createServer();
    h2.on("stream", (s: http2.ServerHttp2Stream) => {
      s.respond({ ":status": 200 });
      s.end("answered");
    });
    // The first connection's first bytes go to a read left pending by the
    // previous session (as happens when a proxy dies and another dials in
    // before the guest saw the hang-up); every later byte reaches a session.
    let connections = 0;
    const guest = net.createServer((sock) => {
      sock.on("error", () => {});
      if (++connections === 1) sock.once("data", () => guestSessions(sock, h2));
      else guestSessions(sock, h2);
    });
    open.push(guest);
    await new Promise<void>((r) => guest.listen(join(dir, "port.sock"), r));
    proxy = serveProxy(join(dir, "proxy.sock"), async () => net.connect(join(dir, "port.sock")));
    const res = await fetch("http://proxy/husk.agent.v1.Agent/Ping", { unix: join(dir, "proxy.sock"), method: "POST", body: "x" } as RequestInit);
    expect(await res.text()).toBe("answered");
    expect(connections).toBe(2);
  }, 30_000);
});
