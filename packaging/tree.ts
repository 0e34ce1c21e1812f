import { spawnSync } from "node:child_process";
import { chmodSync, lstatSync, lutimesSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { HuskError } from "../lib/core/index.ts";

export const REPO = join(import.meta.dirname, "..");

// Runs a tool to completion; its stdout, or an error naming it and its last words.
export function sh(cmd: string, args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, ...env }, maxBuffer: 64 << 20, timeout: 1_200_000 });
  if (r.error) throw new HuskError(`cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new HuskError(`${cmd} ${args[0] ?? ""} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split("\n").slice(-3).join("; ")}`);
  return r.stdout;
}

// The guest assets the packaged binary builds (its own manifest format and
// agent), in a shared build dir where an identical build is reused.
export function buildGuestAssets(binary: string, cache: string, log: (l: string) => void = () => {}): { version: string; dir: string } {
  mkdirSync(cache, { recursive: true });
  log(`package: guest assets of ${binary} in ${cache}`);
  const out = sh("flock", [join(cache, ".lock"), binary, "guest", "build", "--dest", cache, "--agent", binary, "--json"], { HUSK_CONFIG: "/dev/null" });
  const r = JSON.parse(out) as { dir: string; manifest: { version: string } };
  return { version: r.manifest.version, dir: r.dir };
}

function* walk(dir: string): Generator<string> {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    yield p;
    if (lstatSync(p).isDirectory()) yield* walk(p);
  }
}

// Modes say only what a file is (0755 directories and executables, 0644 the
// rest); every timestamp is the source date.
export function normalizeTree(root: string, epoch: number): void {
  for (const p of [root, ...walk(root)]) {
    const st = lstatSync(p);
    if (!st.isSymbolicLink()) chmodSync(p, st.isDirectory() || st.mode & 0o111 ? 0o755 : 0o644);
    lutimesSync(p, epoch, epoch);
  }
}

// Files that mention a build-machine path (checkout, staging or cache dir).
export function forbiddenPaths(root: string, paths: string[]): string[] {
  const needles = paths.filter((p) => p.length > 1).map((p) => Buffer.from(p));
  const found: string[] = [];
  for (const p of walk(root)) {
    if (!lstatSync(p).isFile()) continue;
    const data = readFileSync(p);
    for (const n of needles) if (data.includes(n)) found.push(`${p.slice(root.length)} mentions ${n}`);
  }
  return found;
}
