import type { FileSink } from "bun";
import { ErrorCode, HuskError, errorMessage, log } from "../../core/index.ts";
import { closeFd, dupFd, pipe, setNonBlocking, setWindowSize } from "../../sys/index.ts";
import type { ConsoleSize } from "./types.ts";

const HEAD_BYTES = 2048;
const decoder = new TextDecoder();

// A process's output is read as it is produced and kept here until someone
// reads it, so nothing is lost while no client is attached. Once `limit`
// bytes wait unread we stop reading: the pipe fills and the process blocks
// on write, exactly as with a slow reader, rather than dropping output.
export class OutputBuffer {
  private chunks: Uint8Array[] = [];
  private size = 0;
  private finished = false;
  private readonly readers = new Set<() => void>();
  private writerWake: (() => void) | undefined;
  // The first bytes ever written, kept after they are read: where runc's
  // init reports a startContainer hook that failed (engine start()).
  head = "";

  constructor(private readonly limit: number) {}

  get buffered(): number {
    return this.size;
  }

  get ended(): boolean {
    return this.finished;
  }

  get done(): boolean {
    return this.finished && this.size === 0;
  }

  // Reads source to its end; resolves when it is drained into the buffer.
  async pump(source: AsyncIterable<Uint8Array>, what: string): Promise<void> {
    try {
      for await (const chunk of source) {
        if (this.finished) break;
        if (chunk.length === 0) continue;
        if (this.head.length < HEAD_BYTES) this.head += decoder.decode(chunk.subarray(0, HEAD_BYTES - this.head.length));
        this.chunks.push(chunk);
        this.size += chunk.length;
        this.wakeReader();
        while (this.size >= this.limit && !this.finished) await new Promise<void>((r) => (this.writerWake = r));
      }
    } catch (e) {
      // A pty master reports EIO once the last slave closes: that is its end of file.
      if ((e as NodeJS.ErrnoException).code !== "EIO") log.warn(`${what}: ${errorMessage(e)}`);
    }
    this.end();
  }

  end(): void {
    this.finished = true;
    this.wakeReader();
    this.wakeWriter();
  }

  // Drops what is buffered and ends: for delete, when nobody can read it any more.
  discard(): void {
    this.chunks = [];
    this.size = 0;
    this.end();
  }

  // Next chunk of at most max bytes; null at end of stream. A read given a
  // signal that aborts while it waits (its client went away) takes nothing,
  // so the next reader gets the data instead.
  async read(max = 64 * 1024, signal?: AbortSignal): Promise<Uint8Array | null> {
    while (this.chunks.length === 0) {
      if (this.finished) return null;
      await this.waitForData(signal);
    }
    let chunk = this.chunks[0]!;
    if (chunk.length > max) {
      this.chunks[0] = chunk.subarray(max);
      chunk = chunk.subarray(0, max);
    } else {
      this.chunks.shift();
    }
    this.size -= chunk.length;
    if (this.size < this.limit) this.wakeWriter();
    return chunk;
  }

  // Ends quietly when signal aborts, leaving unread output in place.
  async *iterate(signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    try {
      for (let c = await this.read(undefined, signal); c; c = await this.read(undefined, signal)) yield c;
    } catch (e) {
      if (!signal?.aborted) throw e;
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<Uint8Array> {
    return this.iterate();
  }

  private waitForData(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        this.readers.delete(wake);
        reject(signal!.reason);
      };
      const wake = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      this.readers.add(wake);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private wakeReader(): void {
    const waiting = [...this.readers];
    this.readers.clear();
    for (const w of waiting) w();
  }

  private wakeWriter(): void {
    const w = this.writerWake;
    this.writerWake = undefined;
    w?.();
  }
}

// A process's stdin: a pipe we write and close, or a pty master where "close"
// means typing end-of-file (^D) since the master also carries the output.
export class InputSink {
  private sink: FileSink | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly fd: number,
    private readonly terminal: boolean,
    private readonly what: string,
  ) {}

  write(data: Uint8Array): Promise<number> {
    if (this.closed)
      return Promise.reject(new HuskError(`stdin of ${this.what} is closed`, { code: ErrorCode.FailedPrecondition }));
    return this.enqueue(async () => {
      this.sink ??= Bun.file(this.fd).writer();
      try {
        await this.sink.write(data);
        await this.sink.flush();
      } catch (e) {
        throw new HuskError(`cannot write to stdin of ${this.what}: ${errorMessage(e)}`, { code: ErrorCode.Unavailable });
      }
      return data.length;
    });
  }

  close(): Promise<void> {
    if (this.closed) return this.queue.then(() => undefined);
    if (this.terminal) {
      return this.write(new Uint8Array([4])).then(
        () => void (this.closed = true),
        () => void (this.closed = true),
      );
    }
    this.closed = true;
    return this.enqueue(async () => {
      try {
        await this.sink?.end();
      } catch {
        // the reader is gone; closing is all that is left to do
      }
      closeFd(this.fd);
    });
  }

  // Forget the descriptor without writing (it is owned and closed elsewhere).
  detach(): void {
    this.closed = true;
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    const next = this.queue.then(op, op);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

export interface ProcessIo {
  stdin: InputSink;
  stdout: OutputBuffer;
  stderr: OutputBuffer;
  // Resolves when every output stream has reached its end.
  drained: Promise<void>;
  resize?: (size: ConsoleSize) => void; // terminals only
  release(): void; // closes what is still open (after exit, or on delete)
}

// Three pipes; childFds go to runc, which passes them through to the process.
export function pipeIo(limit: number, what: string): { io: ProcessIo; childFds: [number, number, number]; closeChildFds(): void } {
  const [inR, inW] = pipe();
  const [outR, outW] = pipe();
  const [errR, errW] = pipe();
  const stdout = new OutputBuffer(limit);
  const stderr = new OutputBuffer(limit);
  const stdin = new InputSink(inW, false, what);
  const readEnd = async (buf: OutputBuffer, fd: number, name: string) => {
    await buf.pump(Bun.file(fd).stream(), `${name} of ${what}`);
    closeFd(fd);
  };
  const drained = Promise.all([readEnd(stdout, outR, "stdout"), readEnd(stderr, errR, "stderr")]).then(() => undefined);
  const io: ProcessIo = {
    stdin,
    stdout,
    stderr,
    drained,
    release: () => {
      void stdin.close();
    },
  };
  return { io, childFds: [inR, outW, errW], closeChildFds: () => [inR, outW, errW].forEach(closeFd) };
}

// The pty master runc handed us: one stream in, one out, no separate stderr.
export function terminalIo(master: number, limit: number, what: string): ProcessIo {
  const stdout = new OutputBuffer(limit);
  const stderr = new OutputBuffer(limit);
  stderr.end();
  // Polled, never read by a blocking fs thread (see setNonBlocking).
  setNonBlocking(master);
  const stdin = new InputSink(master, true, what);
  // Output is read from a copy of the descriptor, closed at its end.
  const reader = dupFd(master);
  const drained = stdout.pump(Bun.file(reader).stream(), `terminal of ${what}`).then(() => closeFd(reader));
  let released = false;
  return {
    stdin,
    stdout,
    stderr,
    drained,
    resize: (size) => {
      if (!released) setWindowSize(master, size.height, size.width);
    },
    release: () => {
      if (released) return;
      released = true;
      stdin.detach();
      closeFd(master);
    },
  };
}
