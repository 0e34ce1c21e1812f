// The relay's wire format between a container's stand-in process (`husk
// shim --relay`) and its sandbox's proxy: frames of one type byte, a 4-byte
// big-endian length and the payload. Control frames carry JSON; data frames
// carry the bytes as they are. Both ends are husk processes of possibly
// different releases, so the hello names a version and either end gives up
// cleanly (the shim then relays by itself) on what it does not know.

export const RELAY_VERSION = 1;

export const Frame = {
  // shim -> proxy
  Hello: 1, // {v, containerId, execId?, tty}
  Stdin: 2,
  StdinEnd: 3,
  Signal: 4, // {signal}
  Resize: 5, // {rows, cols}
  // proxy -> shim
  Ready: 16, // {v}
  Stdout: 17,
  Stderr: 18,
  Exit: 19, // {code}
  Refused: 20, // {message}
} as const;

export interface Hello {
  v: number;
  sandboxId: string;
  containerId: string;
  execId?: string;
  tty: boolean;
}

const HEADER = 5;
const MAX_FRAME = 4 << 20;

export function encodeFrame(type: number, payload: Uint8Array | object = new Uint8Array(0)): Uint8Array {
  const body = payload instanceof Uint8Array ? payload : new TextEncoder().encode(JSON.stringify(payload));
  const out = new Uint8Array(HEADER + body.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, body.length);
  out.set(body, HEADER);
  return out;
}

export const decodeJson = <T>(payload: Uint8Array): T => JSON.parse(new TextDecoder().decode(payload)) as T;

// Splits a byte stream into frames; bytes of a frame not yet complete wait
// for the next chunk.
export class FrameReader {
  private buf: Uint8Array = new Uint8Array(0);

  push(chunk: Uint8Array, onFrame: (type: number, payload: Uint8Array) => void): void {
    this.buf = this.buf.length ? concat(this.buf, chunk) : chunk;
    while (this.buf.length >= HEADER) {
      const len = new DataView(this.buf.buffer, this.buf.byteOffset).getUint32(1);
      if (len > MAX_FRAME) throw new Error(`relay frame of ${len} bytes is over the ${MAX_FRAME}-byte limit`);
      if (this.buf.length < HEADER + len) return;
      const type = this.buf[0]!;
      const payload = this.buf.slice(HEADER, HEADER + len);
      this.buf = this.buf.subarray(HEADER + len);
      onFrame(type, payload);
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
