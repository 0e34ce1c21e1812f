import { ErrorCode, HuskError } from "../core/index.ts";
import { checkOperation } from "../oci/index.ts";
import type { Context } from "./context.ts";
import { findContainer, liveStatus } from "./find.ts";

// Resource updates need an agent call this protocol version does not have;
// say so plainly rather than pretend.
export async function updateContainer(ctx: Context, id: string, resources: unknown): Promise<void> {
  const { sandbox, container } = findContainer(ctx, id);
  checkOperation(id, await liveStatus(ctx, sandbox, container), "update");
  if (typeof resources !== "object" || resources === null || Array.isArray(resources))
    throw new HuskError("update: resources must be a JSON object (linux.resources of the runtime spec)", { code: ErrorCode.InvalidArgument });
  throw new HuskError(
    `update: husk cannot change resources of a running container yet ` +
      `(${Object.keys(resources).join(", ") || "nothing"} requested); recreate the container with new limits`,
    { code: ErrorCode.Unimplemented },
  );
}
