import { stateJson, type StateJson } from "../oci/index.ts";
import type { ContainerDoc } from "../persist/index.ts";
import type { Context } from "./context.ts";
import { findContainer, liveStatus } from "./find.ts";

const toState = (c: ContainerDoc): StateJson =>
  stateJson({
    id: c.id,
    status: liveStatus(c),
    pid: c.pid ?? 0,
    bundle: c.bundle,
    rootfs: c.rootfs,
    createdAt: c.createdAt,
    annotations: c.annotations,
  });

// Reads persist only: `state` is called often and must stay cheap.
export async function containerState(ctx: Context, id: string): Promise<StateJson> {
  return toState(findContainer(ctx, id).container);
}

export async function listContainers(ctx: Context): Promise<StateJson[]> {
  const out: StateJson[] = [];
  for (const sid of ctx.store.list()) {
    const doc = (() => {
      try {
        return ctx.store.tryLoad(sid);
      } catch {
        return undefined; // `husk inspect <id>` explains an unreadable sandbox
      }
    })();
    for (const c of doc?.containers ?? []) out.push(toState(c));
  }
  return out;
}
