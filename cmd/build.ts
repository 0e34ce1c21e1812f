// Build script (`npm run build`), not part of the binary: compiles cmd/husk.ts
// into the single self-contained executable dist/husk.
import { $ } from "bun";

const commit = (await $`git rev-parse --short=12 HEAD`.nothrow().quiet().text()).trim() || "unknown";
const dirty = (await $`git status --porcelain`.nothrow().quiet().text()).trim() ? "-dirty" : "";
const outfile = process.argv[2] ?? "dist/husk";

await $`bun build --compile --minify --bytecode --format=esm --define HUSK_COMMIT=${JSON.stringify(commit + dirty)} cmd/husk.ts --outfile ${outfile}`;
console.log(`built ${outfile} (commit ${commit}${dirty})`);
