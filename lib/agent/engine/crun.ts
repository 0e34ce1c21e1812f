import { readFileSync, truncateSync } from "node:fs";
import { basename, join } from "node:path";
import type { HookSpec, Spec } from "../../oci/index.ts";

// crun runs the guest's containers (lib/guest/build.ts); runc runs the local
// driver's. A container and its user must not see which: here crun's few
// differences from runc are brought back to runc's behaviour.

// What the engine asks of the runtime it drives beyond the shared CLI.
export interface Dialect {
  jsonStderr: boolean; // errors come as --log-format json lines on stderr too
  spec(spec: Spec, dir: string): Spec; // the config.json it runs
  beforeStart(dir: string): void;
  hookWording(message: string, hooks: HookSpec[] | undefined, dir: string): string; // runc's words
}

const RUNC: Dialect = { jsonStderr: false, spec: (spec) => spec, beforeStart: () => {}, hookWording: (message) => message };
const CRUN: Dialect = { jsonStderr: true, spec: forCrun, beforeStart: clearHookOutput, hookWording: runcHookWording };

export const dialectOf = (binary: string): Dialect => (basename(binary) === "crun" ? CRUN : RUNC);

const HOOK_OUT = "hooks.stdout";
const HOOK_ERR = "hooks.stderr";
const SHARED = new Set(["shared", "rshared"]);

// The spec crun gets for a container whose state lives in dir:
//  - a hook's output goes to files in dir, as crun drops it unless told
//    (run.oci.hooks.*): runc quotes it when the hook fails;
//  - with a bind asking for shared propagation and no rootfsPropagation,
//    the root is a slave (non-recursive), as under runc's rslave default;
//    crun's recursive default would undo the bind's own propagation.
function forCrun(spec: Spec, dir: string): Spec {
  const annotations = { ...spec.annotations, "run.oci.hooks.stdout": join(dir, HOOK_OUT), "run.oci.hooks.stderr": join(dir, HOOK_ERR) };
  const wantsShared = spec.mounts?.some((m) => m.options?.some((o) => SHARED.has(o)));
  const linux = wantsShared && !spec.linux?.rootfsPropagation ? { ...spec.linux, rootfsPropagation: "slave" } : spec.linux;
  return { ...spec, annotations, ...(linux ? { linux } : {}) };
}

// runc quotes only the failing hook's output: a startContainer hook's must
// not come with the createContainer hooks' (the files are appended to).
function clearHookOutput(dir: string): void {
  for (const name of [HOOK_OUT, HOOK_ERR]) {
    try {
      truncateSync(join(dir, name));
    } catch {
      // none written
    }
  }
}

const CRUN_HOOK_FAILED = /error executing hook `([^`]*)` \(exit code: (-?\d+)\)/;

// runc's wording of a failed hook ("error running hook #1: exit status 3,
// stdout: ..., stderr: ...") for crun's ("error executing hook `/path`
// (exit code: 3)"). crun names the hook by path: of hooks sharing a path,
// the first of the stage's is named.
function runcHookWording(message: string, hooks: HookSpec[] | undefined, dir: string): string {
  const m = CRUN_HOOK_FAILED.exec(message);
  if (!m) return message;
  const index = Math.max(0, (hooks ?? []).findIndex((h) => h.path === m[1]));
  const said = (name: string) => {
    try {
      return readFileSync(join(dir, name), "utf8").trim();
    } catch {
      return "";
    }
  };
  return `error running hook #${index}: exit status ${m[2]}, stdout: ${said(HOOK_OUT)}, stderr: ${said(HOOK_ERR)}`;
}
