import { HuskError } from "../core/index.ts";

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

// A HuskError that callers can tell apart by `reason` (e.g. create checks
// not-found) while the CLI just prints the message.
export class PersistError extends HuskError {
  constructor(
    readonly reason: PersistFailure,
    message: string,
    readonly sandboxId?: string,
    readonly path?: string,
  ) {
    super(message);
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
