import { openContext, type Context } from "../../lib/sandbox/context.ts";
import { getSettings } from "../globals.ts";

// Every OCI command works on the sandboxes under the resolved --root. Commands
// import the one lib/sandbox operation they run, so `state` never loads the
// protocol stack (start-up time is what `state` costs).
export const context = (): Promise<Context> => openContext(getSettings());

export const idArg = { type: "positional", description: "container id", required: true } as const;
