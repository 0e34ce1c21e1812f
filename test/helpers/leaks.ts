import { readdirSync, readFileSync, readlinkSync, lstatSync } from "node:fs";
import { join } from "node:path";
import { mountPoints } from "../../lib/sandbox/mounts.ts";
import { INDEX_DIR } from "../../lib/persist/index.ts";

// What a sandbox can leave behind on the host, for tests that kill husk at
// awkward moments: processes, mounts, socket aliases, cgroups and files under
// the root. A test's bundles put LEAK_MARK=<root> in the container's
// environment so that container processes are found too (husk's own helpers
// carry the root in their command line or settings).

export interface Leaks {
  processes: string[]; // "pid: command line"
  mounts: string[];
  aliases: string[]; // /run/husk-s entries pointing under the root
  cgroups: string[]; // cgroup directories of the given containers
  files: string[]; // anything under the root but the store's own (empty index, sqlite database)
  network: string[]; // husk's taps and ingress qdiscs in the netns given (a VM sandbox's network)
}

const ALIAS_BASES = ["/run/husk-s", "/tmp/husk-s"];
const CGROUP = "/sys/fs/cgroup";

const read = (path: string) => {
  try {
    return readFileSync(path, "latin1");
  } catch {
    return "";
  }
};
const list = (dir: string) => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};

export const leakMark = (root: string) => `LEAK_MARK=${root}`;

// Processes that name the root, or a socket alias of a sandbox under it (the
// local agent is started with its alias paths), in their command line or environment.
function processes(root: string, aliasPaths: readonly string[]): string[] {
  const out: string[] = [];
  const needles = [root, ...aliasPaths].map((p) => Buffer.from(p).toString("latin1"));
  for (const pid of list("/proc")) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const cmd = read(`/proc/${pid}/cmdline`);
    if (!cmd) continue; // a zombie or a kernel thread
    const env = read(`/proc/${pid}/environ`);
    if (needles.some((n) => cmd.includes(n) || env.includes(n))) out.push(`${pid}: ${cmd.split("\0").join(" ").slice(0, 200)}`);
  }
  return out;
}

function aliases(root: string): string[] {
  const out: string[] = [];
  for (const base of ALIAS_BASES)
    for (const n of list(base)) {
      try {
        if (readlinkSync(join(base, n)).startsWith(`${root}/`)) out.push(join(base, n));
      } catch {}
    }
  return out;
}

// runc under the agent names a container's cgroup husk-<hash>-<id>, in each
// hierarchy (cgroup v1, hybrid or v2), possibly under the caller's own.
function cgroups(ids: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    for (const n of list(dir)) {
      const p = join(dir, n);
      let isDir = false;
      try {
        isDir = lstatSync(p).isDirectory();
      } catch {}
      if (!isDir) continue;
      if (n.startsWith("husk-") && ids.some((id) => n.endsWith(`-${id}`))) out.push(p);
      else if (depth < 3) walk(p, depth + 1);
    }
  };
  walk(CGROUP, 0);
  return out;
}

function files(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const n of list(dir)) {
      const p = join(dir, n);
      out.push(p);
      try {
        if (lstatSync(p).isDirectory()) walk(p);
      } catch {}
    }
  };
  walk(root);
  // The store itself (the index, sqlite's database) is not a sandbox's.
  const store = [INDEX_DIR, "persist.db", "persist.db-wal", "persist.db-shm"].map((n) => join(root, n));
  return out.filter((p) => !store.includes(p));
}

// Only the netns a test made for the sandbox is looked at: other tests'
// sandboxes may hold taps in theirs meanwhile.
function network(netns: string | undefined): string[] {
  if (!netns) return [];
  const out = (cmd: string[]) => Bun.spawnSync(cmd, { stderr: "ignore" }).stdout.toString();
  const taps = out(["ip", "-n", netns, "-o", "link"]).split("\n").filter((l) => l.includes("_husk"));
  const qdiscs = out(["tc", "-n", netns, "qdisc", "show"]).split("\n").filter((l) => l.includes("ingress"));
  return [...taps.map((l) => `link ${l.split(":")[1]?.trim()}`), ...qdiscs.map((l) => `qdisc ${l.trim()}`)];
}

export function findLeaks(root: string, containerIds: readonly string[] = [], netns?: string): Leaks {
  const aliasPaths = aliases(root);
  // A sandbox's alias is derived from its directory: processes that were
  // started through it are found even once the alias itself is gone.
  const derived = containerIds.flatMap((id) =>
    ALIAS_BASES.map((b) => join(b, new Bun.CryptoHasher("sha256").update(join(root, id)).digest("hex").slice(0, 16))),
  );
  return {
    processes: processes(root, [...aliasPaths, ...derived]),
    mounts: mountPoints().filter((m) => m === root || m.startsWith(`${root}/`)),
    aliases: aliasPaths,
    cgroups: cgroups(containerIds),
    files: files(root),
    network: network(netns),
  };
}

export const noLeaks: Leaks = { processes: [], mounts: [], aliases: [], cgroups: [], files: [], network: [] };

// Processes take a moment to go once told to: wait up to timeoutMs for a clean host.
// With files: false, files under the root are not counted (a document husk
// refuses to read is left alone on purpose).
export async function settledLeaks(
  root: string,
  containerIds: readonly string[] = [],
  timeoutMs = 10_000,
  opts: { files?: boolean; netns?: string } = {},
): Promise<Leaks> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = findLeaks(root, containerIds, opts.netns);
    const leaks = opts.files === false ? { ...found, files: [] } : found;
    if (JSON.stringify(leaks) === JSON.stringify(noLeaks) || Date.now() > deadline) return leaks;
    await Bun.sleep(100);
  }
}
