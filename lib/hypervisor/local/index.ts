import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { HuskError, isAlive, processStartTime, selfCommand, terminate } from "../../core/index.ts";
import type { Hypervisor, VmSpec, VmState, VmStatus } from "../types.ts";

// The `local` driver runs no VM: the sandbox's agent is a host process and its
// containers are plain runc containers. It isolates no more than runc does.

export interface LocalOptions {
  ociRuntime: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

function logTail(path: string): string {
  try {
    return readFileSync(path, "utf8").trim().split("\n").slice(-5).join("\n");
  } catch {
    return "";
  }
}

async function waitForAgent(sock: string, pid: number, logPath: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) throw new HuskError(`agent exited during start-up: ${logTail(logPath) || "no output"}`);
    try {
      (await dialUnix(sock, 500)).destroy();
      return;
    } catch {
      await sleep(10);
    }
  }
  throw new HuskError(`agent did not listen on ${sock} within ${timeoutMs} ms: ${logTail(logPath)}`);
}

function spawnAgent(spec: VmSpec, opts: LocalOptions, sock: string, logPath: string): number {
  const log = openSync(logPath, "a");
  const [cmd, ...args] = selfCommand();
  const child = spawn(
    cmd!,
    [...args, "agent", "--listen", `unix:${sock}`, "--runtime", opts.ociRuntime, "--state-dir", join(spec.vmDir, "agent")],
    { detached: true, stdio: ["ignore", log, log], env: process.env },
  );
  closeSync(log);
  child.unref();
  if (!child.pid) throw new HuskError(`cannot start agent ${cmd}`);
  return child.pid;
}

export function localDriver(opts: LocalOptions): Hypervisor {
  return {
    name: "local",
    async start(spec: VmSpec): Promise<VmState> {
      const sock = join(spec.vmDir, "agent.sock");
      const logPath = join(spec.vmDir, "agent.log");
      const pid = spawnAgent(spec, opts, sock, logPath);
      const state: VmState = {
        driver: "local",
        vmDir: spec.vmDir,
        pid,
        agent: { kind: "unix", path: sock },
        pidStartTime: processStartTime(pid),
      };
      try {
        await waitForAgent(sock, pid, logPath, 10_000);
      } catch (e) {
        await this.stop(state);
        throw e;
      }
      return state;
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
    },
  };
}
