import http2 from "node:http2";
import { rmSync } from "node:fs";
import type { Duplex } from "node:stream";
import { errorMessage, log } from "../core/index.ts";
import { DEFAULT_READ_MAX_BYTES } from "./limits.ts";

// A VM's agent channel (virtio-serial, hybrid vsock) is ONE byte stream that
// only one host process can hold. The proxy holds it (HTTP/2 to the agent) and
// serves a unix socket where any number of husk processes (CLI, shims) make
// Connect calls; each call is forwarded as one HTTP/2 stream. It forwards
// bytes, not messages, so it needs no change when the protocol grows.

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "host", "content-length", "upgrade"]);

export interface ProxyServer {
  close(): Promise<void>;
}

// How long each dial waits for the proof. The first wait is shorter: right
// after a VM is restored under TCG the guest's code is translated afresh
// (answers take up to ~1 s), and a guest whose port was mid-reopen when it
// was saved may have lost our preface; later waits allow for a loaded host.
const SETTINGS_WAITS_MS = [2500, 5000, 5000];
const REDIAL_MS = 300; // time for the guest to see the hang-up and reopen its port
const KEEPALIVE_MS = 5000;

const settled = (s: http2.ClientHttp2Session, ms: number, start: (done: (ok: boolean) => void) => void) =>
  new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const done = (ok: boolean) => (clearTimeout(timer), resolve(ok));
    s.once("close", () => done(false));
    start(done);
  });

// The agent answers a new session with its SETTINGS, then acks our PING. The
// ack proves that the agent's session which read our preface is the one
// answering: a guest can lose the first bytes of a new connection to a read
// still pending on the port from its previous session, and then its next
// session sends SETTINGS but rejects our frames (calls on it would never be
// answered).
const proven = async (s: http2.ClientHttp2Session, ms: number) =>
  (await settled(s, ms, (done) => s.once("remoteSettings", () => done(true)))) &&
  settled(s, ms, (done) => s.ping((err) => done(!err)) || done(false));

class Upstream {
  private session: http2.ClientHttp2Session | undefined;
  private pending: Promise<http2.ClientHttp2Session> | undefined;
  constructor(private readonly dial: () => Promise<Duplex>) {}

  get(): Promise<http2.ClientHttp2Session> {
    if (this.session && !this.session.closed && !this.session.destroyed) return Promise.resolve(this.session);
    this.pending ??= this.open().finally(() => (this.pending = undefined));
    return this.pending;
  }

  // A session the agent does not prove (above) began while the guest still
  // read the previous proxy's stream: hanging up makes the guest reopen the
  // port, and the next dial starts clean.
  private async open(): Promise<http2.ClientHttp2Session> {
    for (let attempt = 1; ; attempt++) {
      const stream = await this.dial();
      stream.on("error", () => {}); // the session reports what matters; later ones (EPIPE once we hung up) do not
      const s = this.newSession(stream);
      const wait = SETTINGS_WAITS_MS[attempt - 1]!;
      if (await proven(s, wait)) return this.accept(s);
      s.destroy();
      stream.destroy();
      if (attempt === SETTINGS_WAITS_MS.length) throw new Error(`the agent did not answer a new session in ${attempt} dials`);
      log.warn(`proxy: the agent did not answer a new session within ${wait} ms; dialling again`);
      await Bun.sleep(REDIAL_MS);
    }
  }

  private newSession(stream: Duplex): http2.ClientHttp2Session {
    const s = http2.connect("http://agent", { createConnection: () => stream as never, maxSessionInvalidFrames: 2 ** 31 } as never);
    s.on("close", () => this.drop(s));
    s.on("error", (e) => {
      log.warn(`proxy: agent session: ${errorMessage(e)}`);
      this.drop(s);
    });
    return s;
  }

  // An agent's session sends its SETTINGS first thing and not again: SETTINGS
  // on a proven session come from a new session in the guest (a restarted
  // agent, or one that lost our bytes), which knows nothing of our calls.
  // Ending ours fails the calls waiting there; their callers come back.
  // A PING now and then: an agent restarted in the guest starts its session
  // only once bytes reach it (lib/protocol/server), and an idle proxy whose
  // callers all wait on long calls would otherwise never send any.
  private accept(s: http2.ClientHttp2Session): http2.ClientHttp2Session {
    const keepalive = setInterval(() => !s.destroyed && s.ping(() => {}), KEEPALIVE_MS);
    s.once("close", () => clearInterval(keepalive));
    s.on("remoteSettings", () => {
      log.warn("proxy: a new session of the agent in the guest answered; ending the one it replaced");
      clearInterval(keepalive);
      this.drop(s);
      s.destroy();
    });
    return (this.session = s);
  }

  private drop(s: http2.ClientHttp2Session): void {
    if (this.session === s) this.session = undefined;
  }

  close(): void {
    this.session?.destroy();
  }
}

// Said with status 502 (no Connect code maps to it), as a Connect error
// body: the client names the sandbox and the proxy, and adds this reason.
const unreachable = (why: string) =>
  new Response(JSON.stringify({ code: "unavailable", message: `the proxy\'s channel into the VM failed: ${why}` }), {
    status: 502,
    headers: { "content-type": "application/json" },
  });

function forward(upstream: Upstream, req: Request): Promise<Response> {
  return upstream.get().then(
    (session) =>
      new Promise<Response>((resolve) => {
        const headers: Record<string, string> = { ":method": req.method, ":path": new URL(req.url).pathname };
        req.headers.forEach((v, k) => {
          if (!HOP_BY_HOP.has(k)) headers[k] = v;
        });
        const call = session.request(headers);
        req.signal.addEventListener("abort", () => call.close(http2.constants.NGHTTP2_CANCEL));
        call.on("error", (e) => resolve(unreachable(errorMessage(e))));
        // A session that ends under the call (the agent's side went away)
        // may close its streams without an error: never leave the caller waiting.
        call.on("close", () => resolve(unreachable("the agent's session ended before it answered")));
        call.on("response", (h) => {
          const out = new Headers();
          for (const [k, v] of Object.entries(h)) if (!k.startsWith(":") && v !== undefined) out.set(k, String(v));
          // The caller may go away first (cancel): later events must not
          // touch the closed stream, or the throw would end the proxy.
          let done = false;
          const body = new ReadableStream<Uint8Array>({
            start(ctl) {
              call.on("data", (chunk: Buffer) => done || ctl.enqueue(new Uint8Array(chunk)));
              call.on("end", () => done || ((done = true), ctl.close()));
              call.on("error", (e) => done || ((done = true), ctl.error(e)));
            },
            cancel: () => {
              done = true;
              call.close(http2.constants.NGHTTP2_CANCEL);
            },
          });
          resolve(new Response(body, { status: Number(h[":status"] ?? 502), headers: out }));
        });
        req.arrayBuffer().then((b) => call.end(Buffer.from(b)));
      }),
    (e) => unreachable(errorMessage(e)),
  );
}

export function serveProxy(path: string, dial: () => Promise<Duplex>, readMaxBytes = DEFAULT_READ_MAX_BYTES): ProxyServer {
  rmSync(path, { force: true });
  const upstream = new Upstream(dial);
  const server = Bun.serve({
    unix: path,
    idleTimeout: 0 as never, // honoured on unix sockets too (measured), though the types omit it // wait and output calls last as long as containers run
    maxRequestBodySize: readMaxBytes + 64 * 1024,
    fetch: (req) => forward(upstream, req),
  });
  return {
    async close() {
      await server.stop(true);
      upstream.close();
      rmSync(path, { force: true });
    },
  };
}
