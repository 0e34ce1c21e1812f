// Stands in for virtiofsd in the clh driver tests (virtiofsd itself is not
// under test): takes --socket-path=/--shared-dir= like the real one, refuses a
// missing shared directory, serves one VMM connection and, like virtiofsd,
// exits when that VMM goes away (or on SIGTERM).
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { BUN } from "../helpers/husk.ts";

export function writeVirtiofsdLauncher(dir: string): string {
  const path = join(dir, "virtiofsd");
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, `#!/bin/sh\nexec '${BUN}' '${import.meta.filename}' "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

function main(): void {
  const flag = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const socket = flag("socket-path");
  const shared = flag("shared-dir");
  if (!socket || !shared) {
    console.error("virtiofsd stand-in: --socket-path= and --shared-dir= are required");
    process.exit(2);
  }
  if (!existsSync(shared)) {
    console.error(`virtiofsd stand-in: shared directory ${shared} does not exist`);
    process.exit(1);
  }
  console.log(`serving ${shared} on ${socket}`);
  const server = createServer((vmm) => {
    vmm.on("error", () => {});
    vmm.on("close", () => process.exit(0));
  }).listen(socket);
  process.on("SIGTERM", () => server.close(() => process.exit(0)));
}

if (import.meta.main) main();
