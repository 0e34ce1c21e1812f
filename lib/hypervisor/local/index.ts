import { spawnSync } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { HuskError, isAlive, processStartTime, startDaemon, terminate } from "../../core/index.ts";
import type { Hypervisor, VmSpec, VmState, VmStatus } from "../types.ts";

// The `local` driver runs no VM: the sandbox's agent is a host process and its
// containers are plain runc containers. It isolates no more than runc does.

export interface LocalOptions {
  ociRuntime: string;
}

export function dialUnix(path: string, timeoutMs = 5000): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new HuskError(`agent socket ${path}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once("connect", () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once("error", (e) => {
      clearTimeout(timer);
      reject(new HuskError(`cannot reach agent at ${path}: ${e.message}`));
    });
  });
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

export function localDriver(opts: LocalOptions): Hypervisor {
  return {
    name: "local",
    async start(spec: VmSpec): Promise<VmState> {
      const sock = join(spec.vmDir, "agent.sock");
      const logPath = join(spec.vmDir, "agent.log");
      const pid = await startDaemon({ args: agentArgs(spec, opts, sock), logPath, socket: sock, what: "agent" });
      return {
        driver: "local",
        vmDir: spec.vmDir,
        pid,
        agent: { kind: "unix", path: sock },
        pidStartTime: processStartTime(pid),
      };
    },
    dialAgent: (state, timeoutMs) => dialUnix(state.agent.path, timeoutMs),
    async pause() {
      throw new HuskError("the local driver has no VM to pause; pause the containers instead");
    },
    async resume() {
      throw new HuskError("the local driver has no VM to resume");
    },
    async status(state): Promise<VmStatus> {
      return isAlive(state.pid, state.pidStartTime) ? "running" : "stopped";
    },
    async stop(state) {
      if (state.pid) await terminate(state.pid, state.pidStartTime, 5000);
      rmSync(state.agent.path, { force: true });
      removeOrphans(opts.ociRuntime, join(state.vmDir, "agent", "runc"));
    },
  };
}
