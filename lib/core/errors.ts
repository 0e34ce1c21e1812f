// One error type for everything a user can cause or fix. The CLI prints its
// message without a stack trace; anything else is a bug and gets one under --debug.
export class HuskError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = "HuskError";
  }
}

export const errorMessage = (e: unknown): string =>
  e instanceof Error ? e.message : String(e);
