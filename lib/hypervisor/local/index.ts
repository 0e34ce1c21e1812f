import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, rmSync } from "node:fs";
import { join } from "node:path";
import { HuskError } from "../../core/index.ts";
import { LocalVmSchema, type LocalVmRecord as LocalVm } from "../../persist/index.ts";
import { dialUnix } from "../dial.ts";
import { running, startDaemon, stopProcess } from "../process.ts";
import type { Hypervisor, VmSpec } from "../types.ts";
import { LOCAL_FEATURES } from "./features.ts";

// The `local` driver runs no VM: the sandbox's agent is a host process and its
// containers are plain runc containers. It isolates no more than runc does.

export interface LocalOptions {
  ociRuntime: string;
}

function agentArgs(spec: VmSpec, opts: LocalOptions, sock: string): string[] {
  return ["agent", "--listen", `unix:${sock}`, "--runtime", opts.ociRuntime, "--state-dir", join(spec.vmDir, "agent")];
}

// Containers outlive an agent that was killed: remove what its runc state
// still lists, so nothing keeps running once the sandbox is gone.
function removeOrphans(runtime: string, runcRoot: string): void {
  if (!existsSync(runcRoot)) return;
  const listed = spawnSync(runtime, ["--root", runcRoot, "list", "--format", "json"], { encoding: "utf8" });
  let ids: string[] = [];
  try {
    ids = ((JSON.parse(listed.stdout || "null") as { id: string }[] | null) ?? []).map((c) => c.id);
  } catch {}
  for (const id of ids) spawnSync(runtime, ["--root", runcRoot, "delete", "--force", id]);
}

// Only a socket: the path comes from a document, which may be corrupt.
function removeSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) rmSync(path, { force: true });
  } catch {}
}

export function localDriver(opts: LocalOptions): Hypervisor<LocalVm> {
  return {
    name: "local",
    features: LOCAL_FEATURES,
    schema: LocalVmSchema,
    async start(spec) {
      const socket = join(spec.vmDir, "agent.sock");
      const logPath = join(spec.vmDir, "agent.log");
      const agent = await startDaemon({ args: agentArgs(spec, opts, socket), logPath, socket, what: "agent" });
      return { driver: "local", dir: spec.vmDir, agent, socket };
    },
    channel: (vm) => ({ kind: "unix", path: vm.socket }),
    dialAgent: (vm, timeoutMs) => dialUnix(vm.socket, timeoutMs),
    mainProcess: (vm) => vm.agent,
    vitals: () => [],
    async pause() {
      throw new HuskError("the local driver has no VM to pause; pause the containers instead");
    },
    async resume() {
      throw new HuskError("the local driver has no VM to resume");
    },
    status: async (vm) => (running(vm.agent) ? "running" : "stopped"),
    async stop(vm) {
      await stopProcess(vm.agent, undefined, 5000);
      removeSocket(vm.socket);
      removeOrphans(opts.ociRuntime, join(vm.dir, "agent", "runc"));
    },
  };
}
