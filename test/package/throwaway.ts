import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";

// A throw-away root for installing the package: a mount namespace in which
// /usr, /etc and /var/lib/dpkg are overlays whose upper layers live in `work`
// (so whatever dpkg writes, and whatever is left after a purge, is there to
// be listed), /etc/husk and /run/husk are empty tmpfs, node and bun are
// whited out, and a network namespace that has only lo. The host sees none of it.

export const CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const OVERLAID = ["/usr", "/etc", "/var/lib/dpkg"];

export interface Ran {
  status: number;
  stdout: string;
  stderr: string;
}

export class Throwaway {
  private constructor(
    readonly pid: number,
    readonly work: string,
    private readonly env: Record<string, string>,
  ) {}

  static async start(work: string, env: Record<string, string> = {}): Promise<Throwaway> {
    const mounts = OVERLAID.map((dir, i) => {
      const u = join(work, `upper${i}`), w = join(work, `ovl-work${i}`);
      mkdirSync(u, { recursive: true }), mkdirSync(w, { recursive: true });
      return `mount -t overlay -o lowerdir=${dir},upperdir=${u},workdir=${w} overlay ${dir}`;
    });
    const script = [
      "set -e",
      ...mounts,
      "mkdir -p /etc/husk /run/husk",
      "mount -t tmpfs -o mode=0755 none /etc/husk",
      "mount -t tmpfs -o mode=0711 none /run/husk",
      // Installing must need neither node nor bun.
      `export PATH=${CLEAN_PATH}`,
      'for t in node nodejs bun; do p=$(command -v "$t" || true); case "$p" in /usr/*) rm -f "$p";; esac; done',
      "echo ready",
      "exec sleep infinity",
    ].join("\n");
    const child = spawn("unshare", ["-m", "-n", "--propagation", "private", "sh", "-c", script], { stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    child.stderr!.on("data", (d) => (err += d));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on("data", (d) => String(d).includes("ready") && resolve());
      child.on("exit", (code) => reject(new Error(`throw-away root: unshare exited ${code}: ${err}`)));
    });
    return new Throwaway(child.pid!, work, env);
  }

  upper(dir: "/usr" | "/etc" | "/var/lib/dpkg"): string {
    return join(this.work, `upper${OVERLAID.indexOf(dir)}`);
  }

  private argv(cmd: string[]): string[] {
    const env = Object.entries({ PATH: CLEAN_PATH, HOME: "/root", LANG: "C.UTF-8", ...this.env }).map(([k, v]) => `${k}=${v}`);
    return ["-t", String(this.pid), "-m", "-n", "--", "env", "-i", ...env, ...cmd];
  }

  run(cmd: string[], timeoutMs = 300_000): Ran {
    const r = spawnSync("nsenter", this.argv(cmd), { encoding: "utf8", timeout: timeoutMs });
    return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: `${r.stderr ?? ""}${r.error ? String(r.error) : ""}` };
  }

  // For what must not block the test's own clock (heartbeat sampling). The
  // pid is the command's own (nsenter and env exec it), for a SIGKILL.
  spawn(cmd: string[]): { pid: number; done: Promise<Ran> } {
    const child = spawn("nsenter", this.argv(cmd), { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    const done = new Promise<Ran>((resolve) => child.on("close", (code, signal) => resolve({ status: code ?? (signal ? 128 + 9 : -1), stdout, stderr })));
    return { pid: child.pid!, done };
  }

  runAsync(cmd: string[]): Promise<Ran> {
    return this.spawn(cmd).done;
  }

  sh(script: string): Ran {
    return this.run(["sh", "-c", script]);
  }

  // Every process in this mount namespace but the keeper itself.
  processes(): number[] {
    const ns = readlinkSync(`/proc/${this.pid}/ns/mnt`);
    const out: number[] = [];
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name) || Number(name) === this.pid) continue;
      try {
        if (readlinkSync(`/proc/${name}/ns/mnt`) === ns) out.push(Number(name));
      } catch {}
    }
    return out;
  }

  stop(): void {
    for (const pid of this.processes()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    }
    try {
      process.kill(this.pid, "SIGKILL");
    } catch {}
  }
}

export const exeOf = (pid: number): string => {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return "";
  }
};

export const cmdlineOf = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "";
  }
};
