import { ErrorCode, HuskError, isAlive, validateId } from "../core/index.ts";
import { isLive, type ContainerStatus } from "../oci/index.ts";
import type { ContainerDoc, Found, SandboxDoc } from "../persist/index.ts";
import type { Context } from "./context.ts";

export function findContainer(ctx: Context, id: string): Found<SandboxDoc> {
  validateId(id);
  const found = ctx.store.findContainer(id);
  if (!found) throw new HuskError(`container ${id} does not exist`, { code: ErrorCode.NotFound });
  return found;
}

export function containerIn(doc: SandboxDoc, id: string): ContainerDoc {
  const c = doc.containers.find((x) => x.id === id);
  if (!c) throw new HuskError(`container ${id} does not exist in sandbox ${doc.id}`, { code: ErrorCode.NotFound });
  return c;
}

// The shim that stands for a live container still runs: the record holds.
export const shimAlive = (c: ContainerDoc): boolean => !c.pid || isAlive(c.pid, c.pidStartTime);

// The recorded status, corrected by what can change behind our back. The
// shim is only a hint: while it runs the record holds; once it has gone
// without recording an exit, the agent is asked (a shim can die, or be
// killed, while its container keeps running in the sandbox).
export async function liveStatus(ctx: Context, doc: SandboxDoc, c: ContainerDoc): Promise<ContainerStatus> {
  if (!isLive(c.state) || shimAlive(c)) return c.state;
  // Loaded only here: `husk state` on a healthy container never loads the protocol.
  return (await import("./agent-status.ts")).agentStatus(ctx, doc, c);
}
