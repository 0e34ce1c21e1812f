import { spawnSync } from "node:child_process";
import { join } from "node:path";

// Every run tests the binary built from this tree, never a stale one.
export default function setup(): void {
  const repo = join(import.meta.dirname, "..");
  if (process.env.HUSK_SKIP_BUILD === "1") return;
  const r = spawnSync("npm", ["run", "build", "--silent"], { cwd: repo, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`npm run build failed:\n${r.stderr}${r.stdout}`);
}
