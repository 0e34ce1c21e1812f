import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeBusyboxBundle } from "../test/helpers/bundle.ts";
import { DIST_HUSK } from "../test/helpers/husk.ts";
import { vmEnv, vmSkipReason } from "../test/qemu/assets.ts";

// What an idle VM sandbox costs (issue 15's targets): per host process its
// PSS from /proc/PID/smaps, QEMU's split into guest RAM (the memfd), TCG's
// translation cache (its anonymous rwx mapping) and the rest; the host
// overhead without those two, for one container and per further container;
// and the guest's memory in use (MemTotal - MemAvailable) with the agent up.

interface Split {
  guestRam: number;
  tcgCache: number;
  rest: number;
}

// PSS in KiB of one process, by kind of mapping; the rest also by mapping
// name (a file's basename, or [heap], [anon]), to say where QEMU's own goes.
function pssSplit(pid: string): Split & { restBy: Map<string, number> } {
  const out = { guestRam: 0, tcgCache: 0, rest: 0, restBy: new Map<string, number>() };
  let kind: keyof Split = "rest";
  let name = "";
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const [, perms, path] = head;
      kind = path!.startsWith("/memfd:") ? "guestRam" : perms === "rwxp" && !path ? "tcgCache" : "rest";
      name = path ? path.split("/").pop()! : "[anon]";
      continue;
    }
    const pss = /^Pss:\s+(\d+) kB/.exec(line);
    if (!pss) continue;
    out[kind] += Number(pss[1]);
    if (kind === "rest") out.restBy.set(name, (out.restBy.get(name) ?? 0) + Number(pss[1]));
  }
  return out;
}

const largest = (by: Map<string, number>, n: number) =>
  [...by].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${k} ${mib(v)}`).join(", ");

function processesOf(root: string): { pid: string; name: string }[] {
  const found: { pid: string; name: string }[] = [];
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    let cmd = "";
    let env = "";
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      env = readFileSync(`/proc/${pid}/environ`, "utf8"); // shims and proxies get the root in their settings
    } catch {
      continue;
    }
    if (!(cmd.includes(root) || env.includes(root)) || Number(pid) === process.pid) continue;
    const name = /qemu-system/.test(cmd) ? "qemu" : /virtiofsd/.test(cmd) ? "virtiofsd" : /\0shim\0/.test(cmd) ? "shim" : /\0proxy\0/.test(cmd) ? "proxy" : cmd.split("\0")[0]!;
    found.push({ pid, name });
  }
  return found;
}

const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

// KiB the guest RAM's memory file holds: pages written into it but not yet
// touched by the guest (a template's copy) count here, not in any PSS.
function ramFileKib(pid: string): number {
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("/memfd:")) return (statSync(`/proc/${pid}/fd/${fd}`).blocks * 512) / 1024;
    } catch {}
  }
  return 0;
}

function report(root: string, label: string): number {
  let overhead = 0;
  for (const { pid, name } of processesOf(root)) {
    const s = pssSplit(pid);
    overhead += s.rest;
    const parts = name === "qemu" ? ` (guest RAM ${mib(s.guestRam)} of the ${mib(ramFileKib(pid))} its memory file holds, TCG cache ${mib(s.tcgCache)}, rest ${mib(s.rest)}: ${largest(s.restBy, 5)})` : "";
    console.log(`footprint: ${label}: ${name} ${mib(s.guestRam + s.tcgCache + s.rest)}${parts}`);
  }
  console.log(`footprint: ${label}: host overhead without guest RAM and TCG cache: ${mib(overhead)}`);
  return overhead;
}

const skip = vmSkipReason();
if (skip) {
  console.log(`footprint: skipped: ${skip}`);
} else {
  const work = mkdtempSync(join(tmpdir(), "husk-bench-fp-"));
  const root = join(work, "root");
  const env = { ...process.env, HUSK_CONFIG: "/dev/null", ...vmEnv() };
  const husk = (args: string[], out?: string, extra: Record<string, string> = {}) => {
    const fd = out ? openSync(out, "a") : undefined;
    const stdio = ["ignore", fd ?? "pipe", fd ?? "pipe"] as ("ignore" | "pipe" | number)[];
    const r = spawnSync(DIST_HUSK, ["--root", root, ...args], { env: { ...env, ...extra }, encoding: "utf8", stdio, timeout: 300_000 });
    if (fd !== undefined) closeSync(fd);
    if (r.status !== 0) throw new Error(`husk ${args[0]}: ${r.stderr}`);
    return r.stdout ?? "";
  };
  const idle = (name: string, pod?: string, extra?: Record<string, string>) => {
    const b = makeBusyboxBundle(join(work, name), { args: ["sleep", "3600"] });
    if (pod) {
      const spec = JSON.parse(readFileSync(join(b, "config.json"), "utf8"));
      spec.annotations = { "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": pod };
      Bun.write(join(b, "config.json"), JSON.stringify(spec));
    }
    husk(["create", "--bundle", b, name], join(work, `${name}.out`), extra);
    husk(["start", name], undefined, extra);
  };
  const remove = (ids: string[]) => ids.forEach((id) => spawnSync(DIST_HUSK, ["--root", root, "delete", "--force", id], { env }));
  try {
    idle("fp");
    await Bun.sleep(3000); // let start-up garbage go
    const one = report(root, "1 container");
    const mem = husk(["exec", "fp", "cat", "/proc/meminfo"]);
    const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(mem)?.[1] ?? NaN);
    console.log(`footprint: guest memory in use (MemTotal - MemAvailable), agent and 1 idle container: ${mib(kib("MemTotal") - kib("MemAvailable"))} (target <= 64 MiB)`);
    idle("fp2", "fp");
    await Bun.sleep(3000);
    const two = report(root, "2 containers");
    console.log(`footprint: host overhead, 1 container: ${mib(one)} (target <= 60 MiB); each further container: ${mib(two - one)} (target <= 10 MiB)`);
    idle("fq");
    await Bun.sleep(3000);
    further("cold", two, report(root, "2 sandboxes (3 containers)"));
    remove(["fq", "fp2", "fp"]);
    await fromTemplate();
  } finally {
    remove(["fq", "fp2", "fp", "tb", "ft", "ft2"]);
    rmSync(work, { recursive: true, force: true });
  }

  // A sandbox restored from a VM template (QEMU 10): the first create builds
  // the template, the second is the one measured.
  async function fromTemplate(): Promise<void> {
    let qemu10: string;
    try {
      qemu10 = (await import("../test/helpers/qemu10.ts")).qemu10();
    } catch (e) {
      console.log(`footprint: from a template: skipped: no QEMU 10 (${(e as Error).message.split("\n")[0]})`);
      return;
    }
    const t = { HUSK_QEMU: qemu10, HUSK_VM_TEMPLATES: "1" };
    idle("tb", undefined, t);
    remove(["tb"]);
    idle("ft", undefined, t);
    await Bun.sleep(3000);
    const one = report(root, "1 container, from a template (QEMU 10)");
    idle("ft2", undefined, t);
    await Bun.sleep(3000);
    further("from a template", one, report(root, "2 sandboxes from a template (QEMU 10)"));
  }

  // What one more idle one-container sandbox adds on a host that already
  // runs one: PSS splits pages that processes share (the husk and QEMU
  // binaries, the kernel and initramfs files QEMU maps) between them, so a
  // lone sandbox is charged all of them and each further one only its own.
  function further(label: string, before: number, after: number): void {
    console.log(`footprint: ${label}: each further one-container sandbox adds ${mib(after - before)} of host overhead (target <= 60 MiB per sandbox)`);
  }
}
