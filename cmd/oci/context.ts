import { openContext, type Context } from "../../lib/sandbox/context.ts";
import { HuskError } from "../../lib/core/index.ts";
import { getSettings, globalOptions } from "../globals.ts";

// Every OCI command works on the sandboxes under the resolved --root. Commands
// import the one lib/sandbox operation they run, so `state` never loads the
// protocol stack (start-up time is what `state` costs).
export function context(): Promise<Context> {
  const g = globalOptions();
  if (g.rootless === "true") throw new HuskError("--rootless true: rootless containers are not supported; run husk as root");
  return openContext(getSettings());
}

export const idArg = { type: "positional", description: "container id", required: true } as const;

// create's and run's options, from their shared flags and the global ones.
export function createOptions(args: { id: string; bundle: string; "pid-file"?: string; "console-socket"?: string; "preserve-fds"?: string }) {
  return {
    id: args.id,
    bundle: args.bundle,
    pidFile: args["pid-file"],
    consoleSocket: args["console-socket"],
    preserveFds: Number(args["preserve-fds"] ?? 0),
    systemdCgroup: globalOptions().systemdCgroup === true,
  };
}

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

// A flag of runc's that husk takes and ignores.
const accepted = <T extends "boolean" | "string">(type: T) => ({ type, description: "accepted for compatibility" }) as const;

// runc's CRIU flags that containerd may pass to checkpoint and restore: a VM
// snapshot has no use for them.
export const criuCompatArgs = {
  "work-path": accepted("string"),
  "tcp-established": accepted("boolean"),
  "ext-unix-sk": accepted("boolean"),
  "shell-job": accepted("boolean"),
  "file-locks": accepted("boolean"),
  "empty-ns": accepted("string"),
  "manage-cgroups-mode": accepted("string"),
  "parent-path": accepted("string"),
  "auto-dedup": accepted("boolean"),
  "lazy-pages": accepted("boolean"),
} as const;

// What restore takes besides, for containerd's runc shim.
export const restoreCompatArgs = {
  ...criuCompatArgs,
  "no-pivot": accepted("boolean"),
  "no-subreaper": accepted("boolean"),
} as const;
