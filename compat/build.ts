import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { HuskError } from "../lib/core/index.ts";
import { REPO, type Release } from "./releases.ts";

export interface BuildOptions {
  repo?: string; // the clone whose history holds the release commits
  cacheDir?: string; // binaries by commit; HUSK_COMPAT_CACHE or ~/.cache/husk-compat
  log?: (line: string) => void;
}

export const defaultCacheDir = () => process.env.HUSK_COMPAT_CACHE || join(homedir(), ".cache", "husk-compat");

// The husk binary of a release, built from its own commit with its own
// lockfile, and cached by commit: a release never changes, so neither does its binary.
export function releaseBinary(release: Release, opts: BuildOptions = {}): string {
  const repo = opts.repo ?? REPO;
  const log = opts.log ?? (() => {});
  const dir = join(opts.cacheDir ?? defaultCacheDir(), release.commit);
  const bin = join(dir, "husk");
  if (existsSync(bin)) return bin;

  const short = release.commit.slice(0, 12);
  if (run("git", ["cat-file", "-e", `${release.commit}^{commit}`], repo).status !== 0)
    throw new HuskError(
      `release ${release.version}: commit ${release.commit} is not in the history of ${repo}; ` +
        `a shallow clone lacks it: fetch the full history (git fetch --unshallow) or fix compat/releases.json`,
    );
  const tmp = mkdtempSync(join(tmpdir(), `husk-release-${release.version}-`));
  const tree = join(tmp, "src");
  try {
    log(`compat: building husk ${release.version} from ${short}`);
    must(run("git", ["worktree", "add", "--detach", tree, release.commit], repo), `git worktree add ${short}`);
    installLocked(tree, release, log);
    must(run("npm", ["run", "build", "--silent"], tree), `npm run build of ${release.version}`);
    mkdirSync(dir, { recursive: true });
    // Copy then rename: a parallel run never sees half a binary.
    const part = `${bin}.part-${process.pid}`;
    copyFileSync(join(tree, "dist", "husk"), part);
    chmodSync(part, 0o755);
    renameSync(part, bin);
    return bin;
  } finally {
    run("git", ["worktree", "remove", "--force", tree], repo);
    rmSync(tmp, { recursive: true, force: true });
    run("git", ["worktree", "prune"], repo);
  }
}

// npm ci, so the build uses exactly the release's lockfile. npm 11 refuses
// some lockfiles that omit other platforms' optional packages (ours at 0.1.0
// does); then npm install, accepted only if it left the lockfile as it was.
function installLocked(tree: string, release: Release, log: (line: string) => void): void {
  const flags = ["--no-audit", "--no-fund", "--loglevel=error"];
  const ci = run("npm", ["ci", ...flags], tree);
  if (ci.status === 0) return;
  log(`compat: npm ci refused the lockfile of ${release.version}; trying npm install held to it`);
  must(run("npm", ["install", ...flags], tree), `npm install for ${release.version} (after npm ci failed: ${tail(ci.output)})`);
  if (run("git", ["diff", "--quiet", "--", "package-lock.json"], tree).status !== 0)
    throw new HuskError(
      `release ${release.version}: its package-lock.json no longer installs as locked ` +
        `(npm ci: ${tail(ci.output)}); npm install would change it`,
    );
}

interface Ran {
  status: number;
  output: string;
}

function run(cmd: string, args: string[], cwd: string): Ran {
  // NODE_ENV=production would make npm skip the devDependencies a build needs.
  const { NODE_ENV: _, ...env } = process.env;
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", timeout: 600_000 });
  return { status: r.status ?? -1, output: `${r.stdout ?? ""}${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
}

function must(r: Ran, what: string): void {
  if (r.status !== 0) throw new HuskError(`${what} failed (exit ${r.status}): ${tail(r.output)}`);
}

const tail = (s: string) => s.trim().split("\n").slice(-8).join("\n");
