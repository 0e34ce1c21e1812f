import { createServer, type Socket } from "node:net";
import { rmSync } from "node:fs";
import { errorMessage, log, validateId } from "../core/index.ts";
import { Frame, FrameReader, RELAY_VERSION, decodeJson, encodeFrame, type Hello } from "./frames.ts";
import type { ShimIO } from "./io.ts";

// One relayed stand-in as its proxy sees it: who it stands for, its stdio
// as a ShimIO, and the way to end it.
export interface RelaySession {
  hello: Hello;
  io: ShimIO;
  exit(code: number): void; // the stand-in exits with code
  refuse(message: string): void; // the stand-in relays by itself
}

export interface RelayServer {
  close(): void;
}

// Serves the relay socket of one sandbox's proxy: each connection is a
// container process's stand-in, handed to onSession once its hello is read.
export async function serveRelay(path: string, sandboxId: string, onSession: (s: RelaySession) => void): Promise<RelayServer> {
  rmSync(path, { force: true });
  const open = new Set<Socket>();
  const server = createServer((sock) => {
    open.add(sock);
    sock.on("close", () => open.delete(sock));
    sock.on("error", (e) => log.debug(`relay: ${errorMessage(e)}`));
    accept(sock, sandboxId, onSession);
  });
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(path, resolve));
  return {
    close() {
      server.close();
      for (const s of open) s.destroy();
      rmSync(path, { force: true });
    },
  };
}

function accept(sock: Socket, sandboxId: string, onSession: (s: RelaySession) => void): void {
  const frames = new FrameReader();
  let session: Session | undefined;
  sock.on("data", (chunk: Buffer) => {
    try {
      frames.push(chunk, (type, payload) => {
        if (session) return session.frame(type, payload);
        session = new Session(sock, checkHello(type, payload, sandboxId));
        sock.write(encodeFrame(Frame.Ready, { v: RELAY_VERSION }));
        onSession(session);
      });
    } catch (e) {
      sock.end(encodeFrame(Frame.Refused, { message: errorMessage(e) }));
    }
  });
}

function checkHello(type: number, payload: Uint8Array, sandboxId: string): Hello {
  if (type !== Frame.Hello) throw new Error(`expected a hello, got frame type ${type}`);
  const h = decodeJson<Hello>(payload);
  if (h.v !== RELAY_VERSION) throw new Error(`relay version ${h.v} is not ${RELAY_VERSION}`);
  if (h.sandboxId !== sandboxId) throw new Error(`this proxy serves sandbox ${sandboxId}, not ${h.sandboxId}`);
  validateId(h.containerId);
  if (h.execId !== undefined) validateId(h.execId);
  return { v: h.v, sandboxId, containerId: h.containerId, execId: h.execId, tty: h.tty === true };
}

const isCount = (n: unknown, max: number): n is number => Number.isInteger(n) && (n as number) > 0 && (n as number) <= max;

// Stdin the stand-in sent and the relay has not yet passed on; past this
// much the socket is not read until it drains.
const INBOX_HIGH = 1 << 20;

// Output waits while the stand-in does not read (its caller does not).
function drained(sock: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      sock.off("drain", done).off("close", done);
      resolve();
    };
    sock.on("drain", done).on("close", done);
  });
}

// One stand-in's connection. Signals and a size that arrive before the relay
// set its handlers wait for them.
class Session implements RelaySession {
  readonly io: ShimIO;
  private readonly inbox: Uint8Array[] = [];
  private queued = 0;
  private inputEnded = false;
  private exited = false;
  private wake: (() => void) | undefined;
  private onSignal: ((signal: number) => void) | undefined;
  private onResize: ((rows: number, cols: number) => void) | undefined;
  private readonly signals: number[] = [];
  private size: [number, number] | undefined;

  constructor(
    private readonly sock: Socket,
    readonly hello: Hello,
  ) {
    // A stand-in that goes away without having sent the end of its stdin
    // leaves the process's stdin open (the input fails instead).
    const gone = new Promise<void>((resolve) =>
      sock.on("close", () => {
        this.wake?.();
        if (!this.exited) resolve();
      }),
    );
    this.io = {
      write: (stream, data) => this.send(stream === "stderr" ? Frame.Stderr : Frame.Stdout, data),
      input: { [Symbol.asyncIterator]: () => this.input() },
      onSignal: (h) => {
        this.onSignal = h;
        for (const s of this.signals.splice(0)) h(s);
      },
      onResize: (h) => {
        this.onResize = h;
        if (this.size) h(...this.size);
      },
      gone,
    };
  }

  exit(code: number): void {
    this.exited = true;
    this.sock.end(encodeFrame(Frame.Exit, { code }));
  }

  refuse(message: string): void {
    this.sock.end(encodeFrame(Frame.Refused, { message }));
  }

  private send(type: number, payload: Uint8Array): Promise<void> | undefined {
    return this.sock.destroyed || this.sock.write(encodeFrame(type, payload)) ? undefined : drained(this.sock);
  }

  private async *input(): AsyncGenerator<Uint8Array> {
    for (;;) {
      const c = this.inbox.shift();
      if (c) {
        this.queued -= c.length;
        if (this.queued < INBOX_HIGH) this.sock.resume();
        yield c;
      } else if (this.inputEnded) return;
      else if (this.sock.destroyed) throw new Error("the shim went away");
      else await new Promise<void>((r) => (this.wake = r));
    }
  }

  frame(type: number, payload: Uint8Array): void {
    if (type === Frame.Stdin) {
      this.inbox.push(payload);
      this.queued += payload.length;
      if (this.queued >= INBOX_HIGH) this.sock.pause();
    } else if (type === Frame.StdinEnd) this.inputEnded = true;
    else if (type === Frame.Signal) this.signal(decodeJson<{ signal: unknown }>(payload).signal);
    else if (type === Frame.Resize) this.resize(decodeJson<{ rows: unknown; cols: unknown }>(payload));
    this.wake?.();
  }

  private signal(sig: unknown): void {
    if (!isCount(sig, 64)) throw new Error(`signal ${JSON.stringify(sig)} is not a signal number`);
    if (this.onSignal) this.onSignal(sig);
    else this.signals.push(sig);
  }

  private resize({ rows, cols }: { rows: unknown; cols: unknown }): void {
    if (!isCount(rows, 0xffff) || !isCount(cols, 0xffff)) throw new Error(`terminal size ${rows}x${cols} is out of range`);
    this.size = [rows, cols];
    this.onResize?.(rows, cols);
  }
}
