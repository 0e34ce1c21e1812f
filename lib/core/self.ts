import { join } from "node:path";

// The command line that runs this same husk again (agent, shim): the compiled
// binary itself, or bun plus the entry script when running from source.
export function selfCommand(): string[] {
  const compiled = Bun.main.startsWith("/$bunfs/") || Bun.main.startsWith("B:/~BUN/");
  if (compiled) return [process.execPath];
  return [process.execPath, join(import.meta.dirname, "..", "..", "cmd", "husk.ts")];
}

// For the husk processes that stay up (agent, proxy, shim): JavaScriptCore
// compiles a function once it has run ~500 times; these raise that 200-fold so code
// that runs a few times at start-up stays interpreted, and only truly hot
// code (a busy output relay) is compiled. Measured on the host: a live shim's
// anonymous memory 12.4 -> 10.4 MiB, start-up ~120 -> ~105 ms. Turning the
// JIT off entirely is not possible: bun:ffi needs it.
export const RESIDENT_JSC_ENV: Readonly<Record<string, string>> = {
  BUN_JSC_thresholdForJITAfterWarmUp: "100000",
  BUN_JSC_thresholdForJITSoon: "100000",
};

// A caller's own settings of these win.
export const residentEnv = (env: NodeJS.ProcessEnv = process.env): Record<string, string | undefined> => ({ ...RESIDENT_JSC_ENV, ...env });
