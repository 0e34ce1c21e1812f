import { openContext, type Context } from "../../lib/sandbox/context.ts";
import { HuskError, log } from "../../lib/core/index.ts";
import { getSettings, globalOptions } from "../globals.ts";

// Every OCI command works on the sandboxes under the resolved --root. Commands
// import the one lib/sandbox operation they run, so `state` never loads the
// protocol stack (start-up time is what `state` costs).
export function context(): Promise<Context> {
  const g = globalOptions();
  if (g.rootless === "true") throw new HuskError("--rootless true: rootless containers are not supported; run husk as root");
  return openContext(getSettings());
}

// Accepted so callers that always pass it keep working; said out loud once,
// where it would matter (create), since cgroups are the agent's business.
export function warnSystemdCgroup(): void {
  if (!globalOptions().systemdCgroup) return;
  const msg = "--systemd-cgroup is not supported: the sandbox's agent places containers in cgroups itself (cgroupfs); linux.cgroupsPath is used as a cgroupfs path";
  console.error(`husk: warning: ${msg}`);
  log.warn(msg);
}

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
