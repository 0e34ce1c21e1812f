import { writeSync } from "node:fs";
import { errorMessage, getWindowSize, log, makeRaw, restoreTermios, setControllingTty } from "../core/index.ts";
import { isatty } from "node:tty";
import { OutputStream } from "../protocol/index.ts";
import type { AgentClient } from "../protocol/client/index.ts";

export interface ProcessRef {
  containerId: string;
  execId?: string;
}

// fd writes that ride out a non-blocking pipe being full.
function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) {
    try {
      off += writeSync(fd, data, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EAGAIN") return; // reader gone: drop output
      Bun.sleepSync(1);
    }
  }
}

// Copies the process's stdout and stderr to our fds 1 and 2 until both end.
export async function pumpOutput(agent: AgentClient, ref: ProcessRef, signal?: AbortSignal): Promise<void> {
  const stream = agent.rpc.streamOutput(
    { containerId: ref.containerId, execId: ref.execId ?? "", streams: [OutputStream.STDOUT, OutputStream.STDERR] },
    { signal, timeoutMs: 0 },
  );
  for await (const msg of stream) {
    if (msg.data.length) writeAll(msg.stream === OutputStream.STDERR ? 2 : 1, msg.data);
  }
}

// Copies our stdin to the process, then closes its stdin.
export async function pumpInput(agent: AgentClient, ref: ProcessRef): Promise<void> {
  const target = { containerId: ref.containerId, execId: ref.execId ?? "" };
  for await (const chunk of Bun.stdin.stream()) {
    await agent.rpc.writeStdin({ ...target, data: chunk });
  }
  await agent.rpc.closeStdin(target);
}

// After the process exits, how long its output may take to arrive in full
// (under load the output stream lags the exit); only output that a child
// left running still writes is given up after this, as runc's caller would
// have to wait for it.
const OUTPUT_DRAIN_MS = 10_000;

export async function drainOutput(output: Promise<void>): Promise<void> {
  await Promise.race([output, Bun.sleep(OUTPUT_DRAIN_MS)]);
}

export async function waitExit(agent: AgentClient, ref: ProcessRef): Promise<number> {
  const r = await agent.rpc.waitProcess({ containerId: ref.containerId, execId: ref.execId ?? "" }, { timeoutMs: 0 });
  return r.signal ? 128 + r.signal : r.exitStatus;
}

// Passes the size of the terminal on stdin to the process, now and on every
// SIGWINCH (which the kernel sends to the terminal's foreground process group).
function followWindowSize(agent: AgentClient, ref: ProcessRef): void {
  const target = { containerId: ref.containerId, execId: ref.execId ?? "" };
  let last = "";
  const resize = () => {
    const { rows, cols } = getWindowSize(0);
    if (!rows || !cols || `${rows}x${cols}` === last) return; // 0x0: the caller has not sized it yet
    last = `${rows}x${cols}`;
    agent.rpc.resizeTerminal({ ...target, rows, cols }).catch((e) => log.warn(`terminal resize: ${errorMessage(e)}`));
  };
  process.on("SIGWINCH", resize);
  resize();
}

// The shim's stdin is the slave of the pty whose master the caller holds. It
// must become the shim's controlling tty for resizes to signal it, which needs
// a session of its own (the shim is spawned detached).
export function relayTerminal(agent: AgentClient, ref: ProcessRef): void {
  try {
    setControllingTty(0);
  } catch (e) {
    log.warn(`shim: terminal resizes will not reach the container: ${errorMessage(e)}`);
    return;
  }
  followWindowSize(agent, ref);
}

// `husk exec -t` from the user's own terminal: raw while attached, so keys
// reach the container's pty untouched, with the size followed. Returns the undo.
export function attachTerminal(agent: AgentClient, ref: ProcessRef): () => void {
  if (!isatty(0)) return () => {};
  const saved = makeRaw(0);
  followWindowSize(agent, ref);
  return () => restoreTermios(0, saved);
}
