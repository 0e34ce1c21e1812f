import { openContext, type Context } from "../../lib/sandbox/context.ts";
import { getSettings } from "../globals.ts";

// Every OCI command works on the sandboxes under the resolved --root. Commands
// import the one lib/sandbox operation they run, so `state` never loads the
// protocol stack (start-up time is what `state` costs).
export const context = (): Promise<Context> => openContext(getSettings());

export const idArg = { type: "positional", description: "container id", required: true } as const;

// What create and run both take (runc's flags; the compatibility ones are accepted).
export const createArgs = {
  id: idArg,
  bundle: { type: "string", alias: "b", description: "path to the bundle directory", default: "." },
  "pid-file": { type: "string", description: "file to write the container's pid to" },
  "console-socket": { type: "string", description: "unix socket that receives the terminal master" },
  "no-pivot": { type: "boolean", description: "accepted for compatibility" },
  "no-new-keyring": { type: "boolean", description: "accepted for compatibility" },
  "preserve-fds": { type: "string", description: "number of extra fds to pass on (not supported beyond 0)" },
} as const;
