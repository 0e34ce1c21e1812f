import { stateJson, type StateJson } from "../oci/index.ts";
import type { ContainerDoc, SandboxDoc } from "../persist/index.ts";
import type { Context } from "./context.ts";
import { findContainer, liveStatus } from "./find.ts";

const toState = async (ctx: Context, doc: SandboxDoc, c: ContainerDoc): Promise<StateJson> =>
  stateJson({
    id: c.id,
    status: await liveStatus(ctx, doc, c),
    pid: c.pid ?? 0,
    bundle: c.bundle,
    rootfs: c.rootfs,
    createdAt: c.createdAt,
    annotations: c.annotations,
  });

// Reads persist (and asks the agent only when a shim has gone): `state` is
// called often and must stay cheap.
export async function containerState(ctx: Context, id: string): Promise<StateJson> {
  const { sandbox, container } = findContainer(ctx, id);
  return toState(ctx, sandbox, container);
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
    for (const c of doc?.containers ?? []) out.push(await toState(ctx, doc!, c));
  }
  return out;
}
