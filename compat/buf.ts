import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "./releases.ts";

export const BUF = join(REPO, "node_modules", ".bin", "buf");

export interface BufResult {
  ok: boolean;
  output: string;
}

function buf(args: string[], cwd: string): BufResult {
  const r = spawnSync(BUF, args, { cwd, encoding: "utf8", timeout: 120_000 });
  return { ok: r.status === 0, output: `${r.stdout ?? ""}${r.stderr ?? ""}`.trim() };
}

// The workspace's proto (buf.yaml's modules and breaking rules) checked against
// a release's frozen image: ok means every message that release sends or reads still means the same.
export const bufBreaking = (workspace: string, againstImage: string): BufResult =>
  buf(["breaking", "--against", againstImage], workspace);

// An image of the workspace's proto (or a normalised copy of an image file).
export const bufBuild = (input: string, out: string, cwd = REPO): BufResult =>
  buf(["build", input, "-o", out], cwd);

// The image of the proto exactly as it was at a commit (its buf.yaml and proto/).
export function imageAtCommit(commit: string, out: string, repo = REPO): BufResult {
  const tmp = mkdtempSync(join(tmpdir(), "husk-proto-"));
  try {
    const archive = spawnSync("git", ["archive", commit, "buf.yaml", "proto"], { cwd: repo, maxBuffer: 64 << 20 });
    if (archive.status !== 0) return { ok: false, output: `git archive ${commit}: ${archive.stderr}` };
    const tar = spawnSync("tar", ["-x", "-C", tmp], { input: archive.stdout });
    if (tar.status !== 0) return { ok: false, output: `tar: ${tar.stderr}` };
    return bufBuild(".", out, tmp);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
