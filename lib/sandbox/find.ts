import { HuskError, isAlive, validateId } from "../core/index.ts";
import type { ContainerDoc, Found, SandboxDoc } from "../persist/index.ts";
import type { ContainerStatus } from "../oci/index.ts";
import type { Context } from "./context.ts";

export function findContainer(ctx: Context, id: string): Found<SandboxDoc> {
  validateId(id);
  const found = ctx.store.findContainer(id);
  if (!found) throw new HuskError(`container ${id} does not exist`);
  return found;
}

export function containerIn(doc: SandboxDoc, id: string): ContainerDoc {
  const c = doc.containers.find((x) => x.id === id);
  if (!c) throw new HuskError(`container ${id} does not exist in sandbox ${doc.id}`);
  return c;
}

// The recorded state, corrected by the one fact that can change behind our
// back: the shim that stands for a live container has exited.
export function liveStatus(c: ContainerDoc): ContainerStatus {
  const live = c.state === "created" || c.state === "running" || c.state === "paused";
  if (live && c.pid && !isAlive(c.pid, c.pidStartTime)) return "stopped";
  return c.state;
}
