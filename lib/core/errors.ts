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

// What a failed system call means, in words (never a bare errno).
const ERRNO: Record<string, [text: string, code: ErrorCode]> = {
  ENOSPC: ["no space left on device", ErrorCode.ResourceExhausted],
  EDQUOT: ["disk quota exceeded", ErrorCode.ResourceExhausted],
  EMFILE: ["too many open files in this process", ErrorCode.ResourceExhausted],
  ENFILE: ["too many open files on this host", ErrorCode.ResourceExhausted],
  ENOMEM: ["out of memory", ErrorCode.ResourceExhausted],
  EACCES: ["permission denied", ErrorCode.PermissionDenied],
  EPERM: ["operation not permitted", ErrorCode.PermissionDenied],
  EROFS: ["read-only file system", ErrorCode.PermissionDenied],
  ENOENT: ["no such file or directory", ErrorCode.NotFound],
  EEXIST: ["already exists", ErrorCode.AlreadyExists],
  ENOTDIR: ["a component of the path is not a directory", ErrorCode.InvalidArgument],
  EISDIR: ["is a directory", ErrorCode.InvalidArgument],
  ENOTEMPTY: ["directory not empty", ErrorCode.FailedPrecondition],
  EBUSY: ["busy (a mount point, or in use)", ErrorCode.FailedPrecondition],
  EXDEV: ["crosses a file system boundary", ErrorCode.FailedPrecondition],
  ENAMETOOLONG: ["name too long", ErrorCode.InvalidArgument],
  ELOOP: ["too many levels of symbolic links", ErrorCode.InvalidArgument],
  EINVAL: ["invalid argument", ErrorCode.InvalidArgument],
  EIO: ["input/output error", ErrorCode.DataLoss],
  ECONNREFUSED: ["nothing accepts connections there", ErrorCode.Unavailable],
  ECONNRESET: ["the connection was reset", ErrorCode.Unavailable],
  EPIPE: ["the other end closed the connection", ErrorCode.Unavailable],
  ETIMEDOUT: ["timed out", ErrorCode.DeadlineExceeded],
  EAGAIN: ["resource temporarily unavailable", ErrorCode.Unavailable],
};

const VERB: Record<string, string> = {
  open: "cannot open", read: "cannot read", write: "cannot write", mkdir: "cannot create directory",
  rm: "cannot remove", rmdir: "cannot remove", unlink: "cannot remove", rename: "cannot rename",
  symlink: "cannot create link", link: "cannot create link", stat: "cannot access", lstat: "cannot access",
  access: "cannot access", readdir: "cannot list", scandir: "cannot list", connect: "cannot connect to",
  copyfile: "cannot copy", chmod: "cannot change mode of", fsync: "cannot sync", ftruncate: "cannot truncate",
};

type SysErr = Error & { code?: string; syscall?: string; path?: string; dest?: string };

const isSystemError = (e: unknown): e is SysErr =>
  e instanceof Error && typeof (e as SysErr).code === "string" && /^E[A-Z0-9]+$/.test((e as SysErr).code!);

// "cannot write /run/husk/x/persist.json: no space left on device"
function systemErrorText(e: SysErr): string {
  const text = ERRNO[e.code!]?.[0] ?? e.message.replace(/^E[A-Z0-9]+: /, "").split(",")[0]!;
  const verb = e.syscall ? (VERB[e.syscall] ?? e.syscall) : undefined;
  const where = [e.path, e.dest && `to ${e.dest}`].filter(Boolean).join(" ");
  if (verb && where) return `${verb} ${where}: ${text}`;
  return where ? `${where}: ${text}` : verb ? `${verb}: ${text}` : text;
}

// A failed system call as a HuskError with its kind; other values as they are.
export function fromSystemError(e: unknown): unknown {
  if (!isSystemError(e)) return e;
  return new HuskError(systemErrorText(e), { code: ERRNO[e.code!]?.[1] ?? ErrorCode.Internal, cause: e });
}

// The errno behind an error, if it is (or wraps) a failed system call.
export function errnoOf(e: unknown): string | undefined {
  for (let x: unknown = e, i = 0; x && i < 5; x = (x as Error).cause, i++) if (isSystemError(x)) return x.code;
  return undefined;
}

// Only what went wrong, for a message that names the path itself:
// "no space left on device".
export const errorReason = (e: unknown): string =>
  isSystemError(e) ? (ERRNO[e.code!]?.[0] ?? errorMessage(e)) : errorMessage(e);

export const errorMessage = (e: unknown): string =>
  isSystemError(e) ? systemErrorText(e) : e instanceof Error ? e.message : String(e);
