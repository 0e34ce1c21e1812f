import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// Every run tests the binary built from this tree, never a stale one; and
// the temporary directories the run's tests made are removed at its end.
export default function setup(): () => void {
  const before = new Set(ourTempDirs());
  if (process.env.HUSK_SKIP_BUILD !== "1") {
    const repo = join(import.meta.dirname, "..");
    const r = spawnSync("npm", ["run", "build", "--silent"], { cwd: repo, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`npm run build failed:\n${r.stderr}${r.stdout}`);
  }
  return () => removeTempDirs(ourTempDirs().filter((d) => !before.has(d)));
}

// Tests name their directories husk-<what>-XXXXXX (or "husk <what> " where a
// space in the path is the point); /tmp/husk-s is the socket alias base.
const ourTempDirs = () =>
  readdirSync(tmpdir())
    .filter((n) => n.startsWith("husk") && n !== "husk-s")
    .map((n) => join(tmpdir(), n));

// A directory with anything mounted beneath it is left, and said: removing
// through a bind would remove what it binds (and a mount left is a leak).
function removeTempDirs(dirs: string[]): void {
  const mounted = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((l) => (l.split(" ")[4] ?? "").replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  for (const dir of dirs) {
    if (mounted.some((m) => m === dir || m.startsWith(`${dir}/`))) {
      console.error(`test run: ${dir} is left: something is still mounted under it`);
      continue;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}
