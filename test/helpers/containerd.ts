import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { until } from "./cli.ts";

// A containerd of the test's own: private config, root, state and socket, so
// the host's containerd (if any) is never touched.

export interface Containerd {
  dir: string;
  socket: string;
  ctr(...args: string[]): { status: number; stdout: string; stderr: string };
  stop(): Promise<void>;
}

export interface ContainerdOptions {
  dir: string;
  // Extra TOML (a CRI plugin section); without it the CRI plugin is disabled.
  cri?: string;
  // A network namespace to run in: CNI's bridges and pod netns stay in it.
  netns?: string;
}

export function containerdConfig(o: ContainerdOptions): string {
  const socket = join(o.dir, "containerd.sock");
  return [
    "version = 2",
    `root = "${o.dir}/root"`,
    `state = "${o.dir}/state"`,
    ...(o.cri ? [] : ['disabled_plugins = ["io.containerd.grpc.v1.cri"]']),
    "[grpc]", `  address = "${socket}"`,
    "[ttrpc]", `  address = "${socket}.ttrpc"`,
    o.cri ?? "",
  ].join("\n");
}

export async function startContainerd(o: ContainerdOptions): Promise<Containerd> {
  mkdirSync(o.dir, { recursive: true });
  const socket = join(o.dir, "containerd.sock");
  const config = join(o.dir, "containerd.toml");
  writeFileSync(config, containerdConfig(o));
  const cmd = ["containerd", "--config", config];
  const argv = o.netns ? ["nsenter", `--net=${o.netns}`, ...cmd] : cmd;
  const log = join(o.dir, "containerd.log");
  const daemon: ChildProcess = spawn("sh", ["-c", `exec "$@" >>${log} 2>&1`, "sh", ...argv], { stdio: "ignore" });
  const ctr = (...args: string[]) => {
    const r = spawnSync("ctr", ["--address", socket, ...args], { encoding: "utf8", timeout: 120_000 });
    return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
  };
  const stop = async () => {
    daemon.kill("SIGTERM");
    await until(() => daemon.exitCode !== null || daemon.signalCode !== null, 10_000, "containerd to stop").catch(() => daemon.kill("SIGKILL"));
  };
  try {
    await until(() => ctr("version").status === 0, 20_000, `containerd to answer (its log: ${log})`);
  } catch (e) {
    await stop();
    throw e;
  }
  return { dir: o.dir, socket, ctr, stop };
}
