import { join } from "node:path";

// The command line that runs this same husk again (agent, shim): the compiled
// binary itself, or bun plus the entry script when running from source.
export function selfCommand(): string[] {
  const compiled = Bun.main.startsWith("/$bunfs/") || Bun.main.startsWith("B:/~BUN/");
  if (compiled) return [process.execPath];
  return [process.execPath, join(import.meta.dirname, "..", "..", "cmd", "husk.ts")];
}
