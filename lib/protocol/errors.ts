import { Code, ConnectError } from "@connectrpc/connect";
import { ErrorCode, HuskError, errorMessage } from "../core/index.ts";

// Each ErrorCode travels as exactly one Connect code and comes back as the
// same ErrorCode, so a kind the agent chose reaches the host unchanged.
export const CONNECT_CODE: Readonly<Record<ErrorCode, Code>> = {
  [ErrorCode.Unknown]: Code.Unknown,
  [ErrorCode.InvalidArgument]: Code.InvalidArgument,
  [ErrorCode.NotFound]: Code.NotFound,
  [ErrorCode.AlreadyExists]: Code.AlreadyExists,
  [ErrorCode.FailedPrecondition]: Code.FailedPrecondition,
  [ErrorCode.PermissionDenied]: Code.PermissionDenied,
  [ErrorCode.ResourceExhausted]: Code.ResourceExhausted,
  [ErrorCode.DeadlineExceeded]: Code.DeadlineExceeded,
  [ErrorCode.Unavailable]: Code.Unavailable,
  [ErrorCode.Unimplemented]: Code.Unimplemented,
  [ErrorCode.Cancelled]: Code.Canceled,
  [ErrorCode.DataLoss]: Code.DataLoss,
  [ErrorCode.Internal]: Code.Internal,
};

const ERROR_CODE = new Map<Code, ErrorCode>(
  (Object.entries(CONNECT_CODE) as [ErrorCode, Code][]).map(([ours, theirs]) => [theirs, ours]),
);

// Server side: a HuskError keeps its kind, anything else is a bug (Internal).
export function toConnectError(e: unknown): ConnectError {
  if (e instanceof ConnectError) return e;
  if (e instanceof HuskError) return new ConnectError(e.message, CONNECT_CODE[e.code]);
  return new ConnectError(errorMessage(e), Code.Internal);
}

// Client side: the agent's message as it wrote it, with its kind. Connect codes
// husk never sends (Aborted, OutOfRange, Unauthenticated) become Unknown.
export function fromConnectError(e: ConnectError): HuskError {
  return new HuskError(e.rawMessage, { code: ERROR_CODE.get(e.code) ?? ErrorCode.Unknown, cause: e });
}
