import { toJson, type JsonValue } from "@bufbuild/protobuf";
import { GuestDetailsSchema } from "../protocol/index.ts";
import { withAgent } from "./agent.ts";
import type { Context } from "./context.ts";

const GUEST_DETAILS_MS = 15_000;

// `husk inspect --guest`: what the sandbox's agent reports about its machine
// and holds for containers (their state, runc's, directories, mounts).
export async function guestDetails(ctx: Context, sandboxId: string): Promise<JsonValue> {
  const doc = ctx.store.load(sandboxId);
  const r = await withAgent(ctx, doc, (a) => a.rpc.getGuestDetails({}), { timeoutMs: GUEST_DETAILS_MS, what: "asking the agent for its details" });
  return r.guest ? toJson(GuestDetailsSchema, r.guest, { alwaysEmitImplicit: true }) : {};
}
