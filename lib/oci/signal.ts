import { constants } from "node:os";
import { ErrorCode, HuskError } from "../core/index.ts";

const SIGNALS = constants.signals as Record<string, number>;

// "KILL", "SIGKILL", "kill", "9" and 9 all name SIGKILL, as runc accepts them.
export function parseSignal(input: string | number): number {
  const s = String(input).trim();
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n >= 1 && n <= 64) return n;
  } else {
    const name = s.toUpperCase().startsWith("SIG") ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
    const n = SIGNALS[name];
    if (n !== undefined) return n;
  }
  throw new HuskError(`unknown signal ${JSON.stringify(input)}: use a name such as TERM or a number 1-64`, {
    code: ErrorCode.InvalidArgument,
  });
}

export function signalName(n: number): string {
  return Object.entries(SIGNALS).find(([, v]) => v === n)?.[0] ?? String(n);
}
