import { ErrorCode, HuskError } from "./errors.ts";

const ID_PATTERN = /^[A-Za-z0-9_.-]+$/;
const MAX_ID_BYTES = 1024;

const invalid = (message: string) => new HuskError(message, { code: ErrorCode.InvalidArgument });

// Checked before any path is built from an id: no '/', no '..', no NUL, no control bytes.
export function validateId(id: string, what = "container"): string {
  const bytes = Buffer.byteLength(id);
  if (bytes === 0) throw invalid(`invalid ${what} id: empty`);
  if (bytes > MAX_ID_BYTES) throw invalid(`invalid ${what} id: ${bytes} bytes, the limit is ${MAX_ID_BYTES}`);
  if (id === "." || id === ".." || !ID_PATTERN.test(id))
    throw invalid(
      `invalid ${what} id ${JSON.stringify(id.slice(0, 64))}: use 1-${MAX_ID_BYTES} bytes of [A-Za-z0-9_.-], not '.' or '..'`,
    );
  return id;
}
