import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { findExecutable } from "../../lib/hypervisor/index.ts";
import { BUN, DIST_HUSK, REPO, husk } from "../helpers/husk.ts";

// Guest assets shared by every VM test (and kept between runs: the .deb cache
// makes a rebuild ~10 s). One build at a time: apt's lists take a lock.
export const TEST_GUEST_DIR = process.env.HUSK_TEST_GUEST_DIR ?? "/var/tmp/husk-test-guest";
export const QEMU = findExecutable(process.env.HUSK_QEMU ?? "qemu-system-x86_64");

// Why VM tests cannot run here, or undefined when they can.
export function vmSkipReason(): string | undefined {
  if (!QEMU) return "qemu-system-x86_64 is not installed (.ci/setup installs qemu-system-x86)";
  if (!existsSync(DIST_HUSK)) return "dist/husk is missing (npm run build): the guest serves it as its agent";
  return undefined;
}

export function buildAssets(extra: string[] = []): { status: number; stdout: string; stderr: string } {
  mkdirSync(TEST_GUEST_DIR, { recursive: true });
  const args = ["guest", "build", "--dest", TEST_GUEST_DIR, "--agent", DIST_HUSK, ...extra];
  const bin = process.env.HUSK_BIN;
  const lock = join(TEST_GUEST_DIR, ".lock");
  if (!findExecutable("flock")) return husk(args);
  const [cmd, argv] = bin ? [bin, args] : [BUN, [join(REPO, "cmd", "husk.ts"), ...args]];
  const r = spawnSync("flock", [lock, cmd!, ...argv], { encoding: "utf8", env: { ...process.env, HUSK_CONFIG: "/dev/null" }, timeout: 600_000 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

// Versions other than `keep` older than an hour are left-overs of earlier runs.
export function pruneOldVersions(keep: string): void {
  for (const name of readdirSync(TEST_GUEST_DIR)) {
    if (name.startsWith(".") || name === keep) continue;
    const p = join(TEST_GUEST_DIR, name);
    if (Date.now() - statSync(p).mtimeMs > 3_600_000) rmSync(p, { recursive: true, force: true });
  }
}

// Settings for a Cli whose sandboxes are QEMU VMs booted from freshly built
// test assets (older builds are pruned).
export function qemuEnv(): Record<string, string> {
  const r = buildAssets();
  if (r.status !== 0) throw new Error(`husk guest build failed: ${r.stderr}`);
  const version = /guest assets (\S+)/.exec(r.stdout)![1]!;
  pruneOldVersions(version);
  return { HUSK_HYPERVISOR: "qemu", HUSK_GUEST_DIR: TEST_GUEST_DIR, HUSK_GUEST_VERSION: version };
}

// Builds (or finds) the test guest assets and returns the environment that
// boots them with the qemu driver: what a VM test's Cli needs.
export function vmEnv(): Record<string, string> {
  const built = buildAssets();
  if (built.status !== 0) throw new Error(`husk guest build: ${built.stderr}`);
  return { HUSK_HYPERVISOR: "qemu", HUSK_GUEST_DIR: TEST_GUEST_DIR, HUSK_GUEST_VERSION: /guest assets (\S+)/.exec(built.stdout)![1]! };
}
