import type { Context } from "./context.ts";
import { createContainer, type CreateOptions } from "./create.ts";
import { deleteContainer } from "./delete.ts";
import { startContainer } from "./start.ts";
import { findContainer } from "./find.ts";
import { isAlive } from "../core/index.ts";

// `husk run`: create + start; attached, wait for the shim (it carries the
// output) and return the container's exit status, then delete it.
export async function runContainer(ctx: Context, opts: CreateOptions & { detach: boolean }): Promise<number> {
  const pid = await createContainer(ctx, opts);
  await startContainer(ctx, opts.id);
  if (opts.detach) return 0;
  while (isAlive(pid)) await Bun.sleep(20);
  const status = findContainer(ctx, opts.id).container.exitStatus ?? 255;
  await deleteContainer(ctx, opts.id, true);
  return status;
}
