import { spawnSync } from "node:child_process";
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
