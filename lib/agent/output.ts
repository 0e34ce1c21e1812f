import { OutputStream } from "../protocol/index.ts";
import type { OutputBuffer } from "./engine/index.ts";

type Chunk = { stream: OutputStream; data: Uint8Array; eof: boolean };

// Merges stdout and stderr into one stream of tagged chunks, ending with an
// eof marker once both have ended. A reader that goes away leaves the unread
// output in the buffers for the next one.
export async function* mergeOutput(sources: [OutputStream, OutputBuffer][], signal?: AbortSignal): AsyncGenerator<Chunk> {
  // Reads cut off by the signal (the client went away) take no output with them.
  const iters = sources.map(([stream, buf]) => ({ stream, it: buf.iterate(signal) }));
  const next = (i: number) => iters[i]!.it.next().then((r) => ({ i, r }));
  const pending = new Map(iters.map((_, i) => [i, next(i)]));
  try {
    while (pending.size) {
      const { i, r } = await Promise.race(pending.values());
      if (r.done) {
        pending.delete(i);
        continue;
      }
      pending.set(i, next(i));
      yield { stream: iters[i]!.stream, data: r.value, eof: false };
    }
    yield { stream: OutputStream.UNSPECIFIED, data: new Uint8Array(), eof: true };
  } finally {
    // Not awaited: a read still pending would hold up the caller's cleanup.
    for (const { it } of iters) void it.return?.(undefined);
  }
}
