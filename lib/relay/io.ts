import { constants } from "node:os";
import { errorMessage, log, setControllingTty, watchWindowSize, writeFully } from "../core/index.ts";

// What relays a container process to its agent works on: the stand-in's
// stdio, signals and terminal size, either its own (ownIO) or carried over a
// relay connection to the sandbox's proxy (lib/relay/server.ts).
export interface ShimIO {
  write(stream: "stdout" | "stderr", data: Uint8Array): void | Promise<void>;
  input: AsyncIterable<Uint8Array>; // the caller's stdin, until its end
  onSignal(handler: (signal: number) => void): void;
  onResize(handler: (rows: number, cols: number) => void): void; // with a terminal only
  gone?: Promise<void>; // a relayed stand-in went away before the process exited
}

// Signals the stand-in passes on to the process it stands for.
const FORWARDED_SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"] as const;

// stdin, read so that a reader may stop and another take over without a
// chunk falling between them: peek() shows the next chunk (undefined at the
// end) and take() consumes it.
export class Stdin implements AsyncIterable<Uint8Array> {
  private next: Promise<Uint8Array | undefined> | undefined;
  private reader: ReadableStreamDefaultReader<Uint8Array> | undefined;

  peek(): Promise<Uint8Array | undefined> {
    const reader = (this.reader ??= Bun.stdin.stream().getReader() as unknown as ReadableStreamDefaultReader<Uint8Array>);
    return (this.next ??= reader.read().then((r) => (r.done ? undefined : r.value)));
  }

  take(): void {
    this.next = undefined;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    for (let c = await this.peek(); c; c = await this.peek()) {
      this.take();
      yield c;
    }
  }
}

// The stand-in's own fds, signals and terminal. Made once per process: a
// handler set later replaces the earlier one (a shim whose relay was lost
// goes on relaying by itself), and signals are caught from the start, so
// none ends the stand-in before a handler is there (they wait for it).
export type OwnIO = ShimIO & { input: Stdin };

// Writes to our own fds 1 and 2.
export const writeOwn: ShimIO["write"] = (stream, data) => writeFully(stream === "stderr" ? 2 : 1, data);

export function ownIO(tty: boolean): OwnIO {
  let onSignal: ((signal: number) => void) | undefined;
  const early: number[] = [];
  for (const sig of FORWARDED_SIGNALS)
    process.on(sig, () => (onSignal ? onSignal(constants.signals[sig]) : early.push(constants.signals[sig])));
  let onResize: ((rows: number, cols: number) => void) | undefined;
  return {
    input: new Stdin(),
    write: writeOwn,
    onSignal(handler) {
      onSignal = handler;
      for (const s of early.splice(0)) handler(s);
    },
    onResize(handler) {
      if (!tty) return;
      const first = !onResize;
      onResize = handler;
      if (first) takeTerminal((rows, cols) => onResize?.(rows, cols));
    },
  };
}

// The stand-in's stdin is the slave of the pty whose master the caller
// holds. It must be our controlling tty for resizes to signal us, which needs
// a session of our own (the shim is spawned detached).
function takeTerminal(cb: (rows: number, cols: number) => void): void {
  try {
    setControllingTty(0);
  } catch (e) {
    log.warn(`shim: terminal resizes will not reach the container: ${errorMessage(e)}`);
    return;
  }
  watchWindowSize(0, cb);
}
