import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import * as v from "valibot";
import { ErrorCode, HuskError, describeIssues, errorMessage, keepCacheFile } from "../../core/index.ts";
import type { QemuVmRecord as QemuVm, SnapshotRecord } from "../../persist/index.ts";
import { running, sleep } from "../process.ts";
import type { CheckpointOptions, SnapshotSupport } from "../types.ts";
import { qmp, qmpStatus } from "./qmp.ts";
import { RAM_FILE, saveRam } from "./ram.ts";

// A QEMU snapshot is one migration stream written to a file (QMP `migrate`
// to "file:"), restored into a new QEMU started with the same command line
// and `-incoming defer`. virtiofsd takes part: it hands over the paths of the
// inodes the guest holds (its default --migration-mode=find-paths), and the
// destination's virtiofsd reopens them under its own shared directory.

export const QemuSnapshotSchema = v.object({
  path: v.string(), // the directory holding STATE_FILE
  createdAt: v.string(),
  vmmVersion: v.string(), // QEMU's "major.minor.micro": restore needs the same
  sourceVmDir: v.string(),
  // What the destination's command line must repeat.
  accel: v.picklist(["kvm", "tcg"]),
  assetsVersion: v.string(),
  cpus: v.number(),
  memoryMiB: v.number(),
  // Guest RAM in a sparse file of its own (RAM_FILE, lib/hypervisor/qemu/ram.ts),
  // the stream holding only the devices: a restore maps a copy instead of
  // loading it. Templates only: a checkpoint stays in the stream format every
  // release restores.
  ramFile: v.optional(v.boolean()),
});
export type QemuSnapshot = v.InferOutput<typeof QemuSnapshotSchema>;

export const SNAPSHOT_INFO = "husk-snapshot.json";
export const STATE_FILE = "vm.state";
const MIGRATE_TIMEOUT_MS = 300_000;
const MIGRATE_POLL_MS = 10; // a template's devices load in ~0.1 s: poll finely

// Shared guest RAM (a memory file) stays out of the stream when the RAM file
// holds it. Set either way: a QEMU keeps its capabilities, and one restored
// from a template (on) must put its RAM in a later checkpoint's stream.
const ignoreSharedRam = (on: boolean | undefined) => [
  { execute: "migrate-set-capabilities", arguments: { capabilities: [{ capability: "x-ignore-shared", state: !!on }] } },
];

// vhost-user-fs became migratable in QEMU 10; older ones refuse any VM with it.
const MIN_MAJOR = 10;

export async function qemuVersion(qmpSocket: string): Promise<string> {
  const [r] = await qmp(qmpSocket, [{ execute: "query-version" }]);
  const q = (r as { qemu?: { major: number; minor: number; micro: number } }).qemu;
  if (!q) throw new HuskError(`QMP ${qmpSocket}: query-version gave no version`);
  return `${q.major}.${q.minor}.${q.micro}`;
}

const refusal = (version: string) =>
  `QEMU ${version} cannot save a VM with a virtio-fs device (QEMU ${MIN_MAJOR} or newer can); ` +
  `point qemu.path (HUSK_QEMU) at one, e.g. qemu-system-x86 from Debian bookworm-backports`;

const migratable = (version: string) => Number(version.split(".")[0]) >= MIN_MAJOR;

function requireMigratable(version: string, what: string): void {
  if (!migratable(version)) throw new HuskError(`${what}: ${refusal(version)}`, { code: ErrorCode.FailedPrecondition });
}

const versions = new Map<string, string>();
const VERSION_RE = /^\d+\.\d+\.\d+$/;

// Templates and checkpoints need a QEMU that migrates vhost-user-fs. Its
// version comes from `qemu -version` (~80 ms), asked once per binary and
// change: every `husk create` is a new process, so the answer is kept in
// cacheDir too when one is given.
export function snapshotSupport(bin: string, cacheDir?: string): SnapshotSupport {
  const st = statSync(bin);
  const identity = `${bin} ${st.size} ${st.mtimeMs}`;
  const version = versions.get(identity) ?? askedVersion(bin, identity, cacheDir);
  versions.set(identity, version);
  // "ram-file": how a template is saved; a build that saves another way
  // (even one with the same commit label, a dirty tree) makes its own.
  return migratable(version) ? { vmm: `qemu ${version} ${identity} ram-file` } : { refused: refusal(version) };
}

function askedVersion(bin: string, identity: string, cacheDir: string | undefined): string {
  const file = cacheDir && join(cacheDir, `vmm-version-${createHash("sha256").update(identity).digest("hex").slice(0, 16)}`);
  const kept = file && readKept(file);
  if (kept) return kept;
  const r = spawnSync(bin, ["-version"], { encoding: "utf8", timeout: 10_000 });
  const version = /version (\d+\.\d+\.\d+)/.exec(r.stdout ?? "")?.[1];
  if (!version) return "unknown";
  if (file) keepCacheFile(file, version);
  return version;
}

function readKept(file: string): string | undefined {
  try {
    const text = readFileSync(file, "utf8");
    return VERSION_RE.test(text) ? text : undefined;
  } catch {
    return undefined;
  }
}


// Polls the migration until it ends; its error names what went wrong.
async function migrationDone(socket: string, what: string): Promise<void> {
  const deadline = Date.now() + MIGRATE_TIMEOUT_MS;
  for (;;) {
    const [r] = await qmp(socket, [{ execute: "query-migrate" }]);
    const m = r as { status?: string; "error-desc"?: string };
    if (m.status === "completed") return;
    if (m.status === "failed" || m.status === "cancelled")
      throw new HuskError(`${what}: ${m["error-desc"] ?? `migration ${m.status}`}`);
    if (Date.now() > deadline) throw new HuskError(`${what}: not done after ${MIGRATE_TIMEOUT_MS} ms (status ${m.status})`, { code: ErrorCode.DeadlineExceeded });
    await sleep(MIGRATE_POLL_MS);
  }
}

export interface SnapshotInputs {
  assetsVersion: string;
  cpus: number;
  memoryMiB: number;
}

// Pauses the VM (if it runs) and writes its state; resumes it if asked.
export async function checkpoint(vm: QemuVm, destDir: string, inputs: SnapshotInputs, opts: CheckpointOptions = {}): Promise<SnapshotRecord> {
  if (!running(vm.vmm)) throw new HuskError(`checkpoint: QEMU of ${vm.dir} is not running`, { code: ErrorCode.FailedPrecondition });
  const dest = resolve(destDir);
  if (existsSync(dest) && readdirSync(dest).length > 0)
    throw new HuskError(`checkpoint: ${dest} is not empty; choose a new directory`, { code: ErrorCode.AlreadyExists });
  const version = await qemuVersion(vm.qmpSocket);
  requireMigratable(version, "checkpoint");
  const wasRunning = (await qmpStatus(vm.qmpSocket)) === "running";
  mkdirSync(dest, { recursive: true, mode: 0o700 });
  const migrate = { execute: "migrate", arguments: { uri: `file:${join(dest, STATE_FILE)}` } };
  await qmp(vm.qmpSocket, [...ignoreSharedRam(opts.sameBuildOnly), { execute: "stop" }, migrate]);
  await migrationDone(vm.qmpSocket, `checkpoint of ${vm.dir}`);
  if (opts.sameBuildOnly) saveRam(vm.vmm!.pid, join(dest, RAM_FILE));
  const snap: QemuSnapshot = {
    path: dest, createdAt: new Date().toISOString(), vmmVersion: version, sourceVmDir: vm.dir, accel: vm.accel, ...inputs,
    ...(opts.sameBuildOnly && { ramFile: true }),
  };
  writeFileSync(join(dest, SNAPSHOT_INFO), JSON.stringify(snap, null, 2) + "\n");
  if (opts.leaveRunning && wasRunning) await qmp(vm.qmpSocket, [{ execute: "cont" }]);
  return { driver: "qemu", ...snap };
}

export function readSnapshot(dir: string): QemuSnapshot {
  const file = join(resolve(dir), SNAPSHOT_INFO);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new HuskError(`${dir} is not a husk QEMU snapshot: cannot read ${file}: ${errorMessage(e)}`, { code: ErrorCode.NotFound });
  }
  const parsed = v.safeParse(QemuSnapshotSchema, raw);
  if (!parsed.success) throw new HuskError(`snapshot info ${file}: ${describeIssues(parsed.issues)}`, { code: ErrorCode.InvalidArgument });
  for (const file of [STATE_FILE, ...(parsed.output.ramFile ? [RAM_FILE] : [])]) {
    const path = join(resolve(dir), file);
    if (!existsSync(path) || statSync(path).size === 0)
      throw new HuskError(`snapshot ${dir} has no VM state (${file} missing or empty)`, { code: ErrorCode.NotFound });
  }
  return { ...parsed.output, path: resolve(dir) };
}

// Into a QEMU started with `-incoming defer` (and a fresh virtiofsd; with
// ramFile, its RAM mapped from a copy already): loads the state and lets the
// VM run. A corrupt or truncated file fails by name.
export async function load(vm: QemuVm, snap: QemuSnapshot): Promise<void> {
  const version = await qemuVersion(vm.qmpSocket);
  if (version !== snap.vmmVersion)
    throw new HuskError(`restore: snapshot ${snap.path} was taken with QEMU ${snap.vmmVersion}, but this one is ${version}; snapshots restore only on the same version`, {
      code: ErrorCode.FailedPrecondition,
    });
  const file = join(snap.path, STATE_FILE);
  const incoming = { execute: "migrate-incoming", arguments: { uri: `file:${file}`, "exit-on-error": false } };
  await qmp(vm.qmpSocket, [...ignoreSharedRam(snap.ramFile), incoming]);
  await migrationDone(vm.qmpSocket, `restore: QEMU cannot load ${file}`);
  await qmp(vm.qmpSocket, [{ execute: "cont" }]);
}
