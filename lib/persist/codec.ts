import { COMMIT, VERSION, errorMessage, preview } from "../core/index.ts";
import { PersistError, type Origin } from "./errors.ts";
import type { FormatChain } from "./formats.ts";

// Largest document we read. A sandbox with a few hundred containers is well
// under 1 MiB; anything near this is not ours.
export const MAX_DOC_BYTES = 8 * 1024 * 1024;

export const RELEASE = { version: VERSION, commit: COMMIT };

// What a file that is not valid JSON still tells: scanned as text, so a
// truncated or scribbled-on document names at least its sandbox.
export function salvage(text: string): { id?: string; formatVersion?: string; state?: string } {
  const field = (name: string) => {
    const m = new RegExp(`"${name}"\\s*:\\s*"((?:[^"\\\\]|\\\\.){0,1024})"`).exec(text.slice(0, 64 * 1024));
    return m?.[1];
  };
  return { id: field("id"), formatVersion: field("formatVersion"), state: field("state") };
}

function describeSalvage(s: ReturnType<typeof salvage>): string {
  const parts = [
    s.id !== undefined && `id ${preview(s.id)}`,
    s.formatVersion !== undefined && `format ${preview(s.formatVersion)}`,
    s.state !== undefined && `state ${preview(s.state)}`,
  ].filter(Boolean);
  return parts.length ? `what could be read: ${parts.join(", ")}` : "nothing could be read from it";
}

export function decodeText<Doc extends Record<string, unknown>>(
  text: string,
  origin: Origin,
  chain: FormatChain<Doc>,
): Doc {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new PersistError(
      "corrupt",
      `${origin.where} (sandbox ${origin.sandboxId}) is not valid JSON (${errorMessage(e)}); ` +
        `${describeSalvage(salvage(text))}. It was left as it is: repair it from the copy shown by ` +
        `\`husk inspect --raw ${origin.sandboxId}\` or remove the sandbox by hand.`,
      origin.sandboxId,
      origin.path,
    );
  }
  const doc = chain.decode(raw, origin);
  if (doc.id !== origin.sandboxId)
    throw new PersistError(
      "invalid",
      `${origin.where} (sandbox ${origin.sandboxId}) holds the document of sandbox ${preview(doc.id)}`,
      origin.sandboxId,
      origin.path,
    );
  return doc;
}

// Always the current format; the release that wrote it is stamped here,
// never by the caller.
export function encodeDoc<Doc extends Record<string, unknown>>(doc: Doc, chain: FormatChain<Doc>): string {
  // formatVersion, id and state lead (what salvage() looks for in a torn
  // file); every other key keeps its place.
  const stamp = { formatVersion: chain.current, createdBy: doc.createdBy ?? RELEASE, writtenBy: RELEASE };
  const out = Object.assign({ formatVersion: chain.current, id: doc.id, state: doc.state }, chain.prepareWrite(doc), stamp);
  // Compact: a third smaller and quicker to fsync; `husk inspect` pretty-prints.
  return JSON.stringify(out) + "\n";
}
