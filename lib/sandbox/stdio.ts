import { errorMessage, log, makeRaw, restoreTermios, watchWindowSize } from "../core/index.ts";
import { isatty } from "node:tty";
import { OutputStream } from "../protocol/index.ts";
import type { AgentClient } from "../protocol/client/index.ts";
import { writeOwn } from "../relay/index.ts";

export interface ProcessRef {
  containerId: string;
  execId?: string;
}

// Copies the process's stdout and stderr (by default to our fds 1 and 2)
// until both end.
export async function pumpOutput(agent: AgentClient, ref: ProcessRef, write = writeOwn): Promise<void> {
  const stream = agent.rpc.streamOutput(
    { containerId: ref.containerId, execId: ref.execId ?? "", streams: [OutputStream.STDOUT, OutputStream.STDERR] },
    { timeoutMs: 0 },
  );
  for await (const msg of stream) {
    if (msg.data.length) await write(msg.stream === OutputStream.STDERR ? "stderr" : "stdout", msg.data);
  }
}

// Copies input (by default our stdin) to the process, then closes its stdin.
export async function pumpInput(agent: AgentClient, ref: ProcessRef, input: AsyncIterable<Uint8Array> = Bun.stdin.stream()): Promise<void> {
  const target = { containerId: ref.containerId, execId: ref.execId ?? "" };
  for await (const chunk of input) {
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

// Passes window sizes on to the process's terminal.
export const resizer = (agent: AgentClient, ref: ProcessRef) => (rows: number, cols: number) => {
  agent.rpc
    .resizeTerminal({ containerId: ref.containerId, execId: ref.execId ?? "", rows, cols })
    .catch((e) => log.warn(`terminal resize: ${errorMessage(e)}`));
};

// `husk exec -t` from the user's own terminal: raw while attached, so keys
// reach the container's pty untouched, with the size followed. Returns the undo.
export function attachTerminal(agent: AgentClient, ref: ProcessRef): () => void {
  if (!isatty(0)) return () => {};
  const saved = makeRaw(0);
  watchWindowSize(0, resizer(agent, ref));
  return () => restoreTermios(0, saved);
}
