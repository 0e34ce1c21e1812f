import { ErrorCode, HuskError } from "../core/index.ts";

export type PersistFailure =
  | "not-found"
  | "exists"
  | "newer-format"
  | "older-format"
  | "corrupt"
  | "invalid"
  | "unsafe-path"
  | "too-large"
  | "lock-timeout"
  | "io";

// The runtime-wide kind of each failure.
const REASON_CODE: Record<PersistFailure, ErrorCode> = {
  "not-found": ErrorCode.NotFound,
  exists: ErrorCode.AlreadyExists,
  "newer-format": ErrorCode.Unimplemented, // this husk cannot read it; a newer one can
  "older-format": ErrorCode.Unimplemented, // this husk no longer reads it; an older one can
  corrupt: ErrorCode.DataLoss,
  invalid: ErrorCode.DataLoss,
  "unsafe-path": ErrorCode.PermissionDenied,
  "too-large": ErrorCode.ResourceExhausted,
  "lock-timeout": ErrorCode.DeadlineExceeded,
  io: ErrorCode.Unavailable,
};

// A HuskError that callers can tell apart by `reason` (e.g. create checks
// not-found) while the CLI just prints the message.
export class PersistError extends HuskError {
  constructor(
    readonly reason: PersistFailure,
    message: string,
    readonly sandboxId?: string,
    readonly path?: string,
    cause?: unknown, // the failed system call, for errnoOf (a full disk, ...)
  ) {
    super(message, { code: REASON_CODE[reason], cause });
    this.name = "PersistError";
  }
}

// Where a document came from, for error messages: "/run/husk/abc/persist.json
// (sandbox abc)" or "/run/husk/persist.db row abc (sandbox abc)".
export interface Origin {
  sandboxId: string;
  where: string;
  path?: string;
}
