// One list of error kinds for the whole runtime, as runc keeps one error-code
// enum. The agent protocol maps each kind to one Connect code and back
// (lib/protocol/errors.ts), so a kind survives the trip from guest to host.
export const ErrorCode = {
  Unknown: "unknown", // not classified; the message says it all (the default)
  InvalidArgument: "invalid-argument", // the request itself is wrong: a bad id, spec, option or flag
  NotFound: "not-found", // a named container, exec, sandbox, bundle or file does not exist
  AlreadyExists: "already-exists", // the name is taken
  FailedPrecondition: "failed-precondition", // the target is in the wrong state, e.g. starting a running container
  PermissionDenied: "permission-denied", // not allowed: file modes, an unsafe path, a missing privilege
  ResourceExhausted: "resource-exhausted", // a limit was hit: message or document size, buffer, disk, memory
  DeadlineExceeded: "deadline-exceeded", // gave up waiting: a timeout, a lock held too long
  Unavailable: "unavailable", // cannot reach the agent, the VM or a process; may work later
  Unimplemented: "unimplemented", // a feature this runtime, driver, agent or format does not support
  Cancelled: "cancelled", // the caller gave up on the operation
  DataLoss: "data-loss", // stored data is corrupt or unreadable
  Internal: "internal", // a bug: an invariant broke or a dependency failed unexpectedly
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface HuskErrorOptions {
  code?: ErrorCode;
  exitCode?: number; // the CLI's exit status
  cause?: unknown;
}

// One error type for everything a user can cause or fix. The CLI prints its
// message without a stack trace; anything else is a bug and gets one under --debug.
export class HuskError extends Error {
  readonly code: ErrorCode;
  readonly exitCode: number;

  // A bare number is the exit code (the older form of the second argument).
  constructor(message: string, opts: HuskErrorOptions | number = {}) {
    const o = typeof opts === "number" ? { exitCode: opts } : opts;
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.name = "HuskError";
    this.code = o.code ?? ErrorCode.Unknown;
    this.exitCode = o.exitCode ?? 1;
  }
}

// The kind of any thrown value: a HuskError's own, Internal for the rest.
export const errorCode = (e: unknown): ErrorCode => (e instanceof HuskError ? e.code : ErrorCode.Internal);

export const errorMessage = (e: unknown): string =>
  e instanceof Error ? e.message : String(e);
