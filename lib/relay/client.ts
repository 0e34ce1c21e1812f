import { createConnection } from "node:net";
import { Frame, FrameReader, RELAY_VERSION, decodeJson, encodeFrame, type Hello } from "./frames.ts";
import type { OwnIO, Stdin } from "./io.ts";

// How a relayed stand-in ended: with the exit status the proxy sent, or with
// the relay lost (or refused) before it, and the reason. The caller then
// relays by itself; the agent kept what the proxy had not delivered.
export type RelayEnd = { exit: number } | { lost: string };

// `husk shim --relay`: the stand-in of a container process hands its stdio,
// signals and terminal size to the sandbox's proxy over socket, which relays
// them to the agent, records the exit and sends back the status to exit with.
export function relayThroughProxy(socket: string, hello: Omit<Hello, "v">, io: OwnIO): Promise<RelayEnd> {
  return new Promise((resolve) => {
    const sock = createConnection(socket);
    const frames = new FrameReader();
    let ended = false;
    const end = (r: RelayEnd) => {
      if (ended) return;
      ended = true;
      sock.destroy();
      resolve(r);
    };
    const send = (type: number, payload?: Uint8Array | object) => !ended && sock.write(encodeFrame(type, payload));
    sock.on("connect", () => send(Frame.Hello, { v: RELAY_VERSION, ...hello }));
    sock.on("error", (e) => end({ lost: e.message }));
    sock.on("close", () => end({ lost: "the proxy closed the relay" }));
    sock.on("data", (chunk: Buffer) => {
      try {
        frames.push(chunk, (type, payload) => {
          if (type === Frame.Stdout) io.write("stdout", payload);
          else if (type === Frame.Stderr) io.write("stderr", payload);
          else if (type === Frame.Exit) end({ exit: decodeJson<{ code: number }>(payload).code });
          else if (type === Frame.Refused) end({ lost: `the proxy refused the relay: ${decodeJson<{ message: string }>(payload).message}` });
          else if (type === Frame.Ready) {
            io.onSignal((signal) => send(Frame.Signal, { signal }));
            if (hello.tty) io.onResize((rows, cols) => send(Frame.Resize, { rows, cols }));
            void pumpStdin(io.input, send, () => ended, () => new Promise((r) => sock.once("drain", r)));
          }
        });
      } catch (e) {
        end({ lost: (e as Error).message });
      }
    });
  });
}

// stdin to the proxy, leaving a chunk read after the relay ended to whoever
// takes over.
type Send = (type: number, payload?: Uint8Array) => boolean;

async function pumpStdin(stdin: Stdin, send: Send, ended: () => boolean, drained: () => Promise<unknown>): Promise<void> {
  for (;;) {
    const chunk = await stdin.peek().catch(() => undefined);
    if (ended()) return;
    stdin.take();
    if (!chunk) return void send(Frame.StdinEnd);
    if (!send(Frame.Stdin, chunk)) await drained();
  }
}
