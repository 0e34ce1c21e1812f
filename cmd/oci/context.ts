import { openContext, type Context } from "../../lib/sandbox/index.ts";
import { getSettings } from "../globals.ts";

// Every OCI command works on the sandboxes under the resolved --root.
export const context = (): Promise<Context> => openContext(getSettings());

export const idArg = { type: "positional", description: "container id", required: true } as const;
