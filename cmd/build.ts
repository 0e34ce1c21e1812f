// Build script (`npm run build`), not part of the binary: compiles cmd/husk.ts
// into the single self-contained executable dist/husk.
import { $ } from "bun";
import { renameSync } from "node:fs";

const commit = (await $`git rev-parse --short=12 HEAD`.nothrow().quiet().text()).trim() || "unknown";
const dirty = (await $`git status --porcelain`.nothrow().quiet().text()).trim() ? "-dirty" : "";
const outfile = process.argv[2] ?? "dist/husk";
const tmp = `${outfile}.tmp-${process.pid}`;

await $`bun build --compile --minify --bytecode --format=esm --define HUSK_COMMIT=${JSON.stringify(commit + dirty)} cmd/husk.ts --outfile ${tmp}`.quiet();
renameSync(tmp, outfile); // a test running dist/husk never sees a half-written file
console.log(`built ${outfile} (commit ${commit}${dirty})`);
