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
  active(): number;
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
    active: () => open.size,
    close() {
      server.close();
      for (const s of open) s.destroy();
      rmSync(path, { force: true });
    },
  };
}

function accept(sock: Socket, sandboxId: string, onSession: (s: RelaySession) => void): void {
  const frames = new FrameReader();
  let session: ReturnType<typeof newSession> | undefined;
  sock.on("data", (chunk: Buffer) => {
    try {
      frames.push(chunk, (type, payload) => {
        if (session) return session.frame(type, payload);
        const hello = checkHello(type, payload, sandboxId);
        session = newSession(sock, hello);
        sock.write(encodeFrame(Frame.Ready, { v: RELAY_VERSION }));
        onSession(session.public);
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

function newSession(sock: Socket, hello: Hello) {
  const inbox: Uint8Array[] = [];
  let queued = 0;
  let inputEnded = false;
  let wake: (() => void) | undefined;
  let onSignal: ((signal: number) => void) | undefined;
  let onResize: ((rows: number, cols: number) => void) | undefined;
  const signals: number[] = [];
  let size: [number, number] | undefined;
  const send = (type: number, payload?: Uint8Array | object) =>
    sock.destroyed || sock.write(encodeFrame(type, payload)) ? undefined : drained(sock);
  // A stand-in that goes away without having sent the end of its stdin
  // leaves the process's stdin open (the input below fails instead).
  let exited = false;
  const gone = new Promise<void>((resolve) =>
    sock.on("close", () => {
      wake?.();
      if (!exited) resolve();
    }),
  );
  const input: AsyncIterable<Uint8Array> = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const c = inbox.shift();
        if (c) {
          queued -= c.length;
          if (queued < INBOX_HIGH) sock.resume();
          yield c;
        } else if (inputEnded) return;
        else if (sock.destroyed) throw new Error("the shim went away");
        else await new Promise<void>((r) => (wake = r));
      }
    },
  };
  const io: ShimIO = {
    write: (stream, data) => send(stream === "stderr" ? Frame.Stderr : Frame.Stdout, data),
    input,
    onSignal(h) {
      onSignal = h;
      for (const s of signals.splice(0)) h(s);
    },
    onResize(h) {
      onResize = h;
      if (size) h(...size);
    },
    gone,
  };
  const frame = (type: number, payload: Uint8Array) => {
    if (type === Frame.Stdin) {
      inbox.push(payload);
      queued += payload.length;
      if (queued >= INBOX_HIGH) sock.pause();
    } else if (type === Frame.StdinEnd) inputEnded = true;
    else if (type === Frame.Signal) {
      const { signal } = decodeJson<{ signal: number }>(payload);
      if (onSignal) onSignal(signal);
      else signals.push(signal);
      return;
    } else if (type === Frame.Resize) {
      const { rows, cols } = decodeJson<{ rows: number; cols: number }>(payload);
      size = [rows, cols];
      onResize?.(rows, cols);
      return;
    }
    wake?.();
  };
  return {
    frame,
    public: {
      hello,
      io,
      exit: (code: number) => ((exited = true), sock.end(encodeFrame(Frame.Exit, { code }))),
      refuse: (message: string) => sock.end(encodeFrame(Frame.Refused, { message })),
    } satisfies RelaySession,
  };
}
