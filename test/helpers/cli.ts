import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { builtBinary } from "./husk.ts";
import { INDEX_DIR } from "../../lib/persist/index.ts";

// Drives the built binary the way conmon or containerd would: its own --root,
// the local driver, no config file, and create's stdio in files (the shim
// keeps them open, so pipes would never close).
export class Cli {
  readonly root: string;
  readonly out: string;
  private bin?: string;
  // `root`: a --root of the test's choosing (odd characters, long paths).
  constructor(readonly env: Record<string, string> = {}, root?: string) {
    const dir = mkdtempSync(join(tmpdir(), "husk-cli-"));
    this.root = root ?? join(dir, "root");
    this.out = join(dir, "out");
  }

  run(args: string[], opts: { stdioFile?: string; input?: string } = {}) {
    const fd = opts.stdioFile ? openSync(opts.stdioFile, "a") : undefined;
    const r = spawnSync(this.bin ?? builtBinary(), ["--root", this.root, ...args], {
      encoding: "utf8",
      input: opts.input,
      stdio: fd === undefined ? "pipe" : ["ignore", fd, fd],
      env: { PATH: process.env.PATH!, HUSK_CONFIG: "/dev/null", HUSK_HYPERVISOR: "local", ...this.env },
      timeout: 60_000,
    });
    if (fd !== undefined) closeSync(fd);
    return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  }

  ok(args: string[], opts: { stdioFile?: string; input?: string } = {}): string {
    const r = this.run(args, opts);
    if (r.status !== 0) throw new Error(`husk ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  }

  // The same root driven by another husk binary (an older release, test/compat).
  using(bin: string): Cli {
    return Object.assign(Object.create(Cli.prototype) as Cli, this, { bin });
  }

  state(id: string): { status: string; pid: number; [k: string]: unknown } {
    return JSON.parse(this.ok(["state", id]));
  }

  // Files left under --root (none once every container is deleted).
  // What is left under the root. The container index (+containers) is a
  // cache whose stale entries are dropped when met: see indexEntries().
  leftovers(): string[] {
    try {
      return readdirSync(this.root).filter((n) => n !== INDEX_DIR);
    } catch {
      return [];
    }
  }

  indexEntries(): string[] {
    const dir = join(this.root, INDEX_DIR);
    return existsSync(dir) ? readdirSync(dir) : [];
  }

  output(file: string): string {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return "";
    }
  }
}

// Processes whose command line mentions this root: shims and agents we started.
export function processesUsing(root: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, "utf8");
      if (cmd.includes(root)) pids.push(Number(name));
    } catch {}
  }
  return pids;
}

export async function until(cond: () => boolean, timeoutMs = 10_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(25);
  }
}
