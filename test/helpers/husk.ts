import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

export const REPO = join(import.meta.dirname, "..", "..");
export const BUN = join(REPO, "node_modules", ".bin", "bun");
export const DIST_HUSK = join(REPO, "dist", "husk");

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

// Runs the CLI from source (fast to iterate) unless HUSK_BIN names a built binary.
export function husk(args: string[], opts: { env?: Record<string, string>; input?: string } = {}): RunResult {
  const bin = process.env.HUSK_BIN;
  const [cmd, argv] = bin ? [bin, args] : [BUN, [join(REPO, "cmd", "husk.ts"), ...args]];
  const r = spawnSync(cmd, argv, {
    encoding: "utf8",
    input: opts.input,
    env: { ...process.env, HUSK_CONFIG: "/dev/null", ...opts.env },
    timeout: 120_000,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

// The binary is built once per run by test/global-setup.ts.
export function builtBinary(): string {
  if (!existsSync(DIST_HUSK)) throw new Error("dist/husk is missing: test/global-setup.ts builds it");
  return DIST_HUSK;
}

// Runs the built binary and SIGKILLs it ms later (unless it ended first).
export async function killedAfter(args: string[], env: Record<string, string>, ms: number): Promise<void> {
  const child = spawn(builtBinary(), args, { env, stdio: "ignore" });
  const exited = new Promise((r) => child.on("exit", r));
  await Bun.sleep(ms);
  child.kill("SIGKILL");
  await exited;
}
