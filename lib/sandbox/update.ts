import { HuskError } from "../core/index.ts";
import type { Context } from "./context.ts";
import { findContainer, liveStatus } from "./find.ts";

// Resource updates need an agent call this protocol version does not have;
// say so plainly rather than pretend.
export async function updateContainer(ctx: Context, id: string, resources: unknown): Promise<void> {
  const { sandbox, container } = findContainer(ctx, id);
  if (liveStatus(container) === "stopped") throw new HuskError(`container ${id} is not running`);
  if (typeof resources !== "object" || resources === null || Array.isArray(resources))
    throw new HuskError("update: resources must be a JSON object (linux.resources of the runtime spec)");
  const driver = sandbox.hypervisor?.driver ?? "unknown";
  throw new HuskError(
    `update: the ${driver} driver cannot change resources of a running container yet ` +
      `(${Object.keys(resources).join(", ") || "nothing"} requested); recreate the container with new limits`,
  );
}
