import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { ErrorCode, HuskError, errorMessage, log } from "../core/index.ts";
import { stateJson, type HookSpec, type Spec, type StateJson } from "../oci/index.ts";
import type { ContainerDoc } from "../persist/index.ts";

// Lifecycle hooks. The ones that set up or watch the container from the
// runtime's side (prestart, createRuntime, poststart, poststop) run here on
// the host, where their paths make sense, with the state `husk state` reports
// on stdin (the user's bundle, the shim's pid): for a VM sandbox there is no
// other place, and the local driver does the same so both behave alike.
// createContainer and startContainer stay in the spec the agent's runc runs,
// in the container's namespaces (for a VM, their paths resolve in the guest).

export const HOST_HOOKS = ["prestart", "createRuntime", "poststart", "poststop"] as const;
export type HostHook = (typeof HOST_HOOKS)[number];

// prestart and createRuntime failing fail the create; poststart and
// poststop failing are warnings, as the runtime-spec says.
const FATAL: Record<HostHook, boolean> = { prestart: true, createRuntime: true, poststart: false, poststop: false };

type HostHooks = NonNullable<ContainerDoc["hooks"]>;

const hostHooks = (spec: Spec, kind: HostHook): HookSpec[] => (spec.hooks?.[kind] as HookSpec[] | undefined) ?? [];

// What the container's record keeps ({ hooks } or nothing), for the hooks
// that come after create.
export function hostHooksOf(spec: Spec): { hooks?: HostHooks } {
  const kept = HOST_HOOKS.filter((k) => hostHooks(spec, k).length).map((k) => [k, hostHooks(spec, k)] as const);
  return kept.length ? { hooks: Object.fromEntries(kept) } : {};
}

// Before anything is made: a host hook that cannot run is refused by name.
export function checkHostHooks(spec: Spec): void {
  for (const kind of HOST_HOOKS)
    hostHooks(spec, kind).forEach((h, i) => {
      if (!existsSync(h.path))
        throw new HuskError(`hooks.${kind}[${i}].path: ${h.path} does not exist`, { code: ErrorCode.InvalidArgument });
    });
}

// The spec the guest runs: the host's hooks taken out.
export function withoutHostHooks(spec: Spec): Spec {
  if (!spec.hooks) return spec;
  const hooks = Object.fromEntries(Object.entries(spec.hooks).filter(([k]) => !(HOST_HOOKS as readonly string[]).includes(k)));
  return { ...spec, hooks };
}

function runHook(h: HookSpec, what: string, state: StateJson): Promise<void> {
  return new Promise((resolve, reject) => {
    const [argv0, ...args] = h.args?.length ? h.args : [h.path];
    const child = spawn(h.path, args, { argv0, env: Object.fromEntries((h.env ?? []).map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)])), stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    const timer = h.timeout ? setTimeout(() => child.kill("SIGKILL"), h.timeout * 1000) : undefined;
    child.stderr!.on("data", (d) => (stderr = (stderr + d).slice(-300)));
    child.stdin!.on("error", () => {}); // a hook that never reads its stdin
    child.stdin!.end(JSON.stringify(state));
    child.on("error", (e) => reject(new HuskError(`${what} (${h.path}): ${errorMessage(e)}`)));
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve();
      const why = signal === "SIGKILL" && h.timeout ? `did not finish within its timeout of ${h.timeout} s` : signal ? `was killed by ${signal}` : `exited with status ${code}`;
      reject(new HuskError(`${what} (${h.path}) ${why}${stderr.trim() ? `: ${stderr.trim()}` : ""}`, { code: ErrorCode.FailedPrecondition }));
    });
  });
}

// Runs the hooks of one kind in order with the container's state on stdin
// (its pid is the shim's, as `husk state` reports it). A fatal kind throws
// at the first failure; the others are warnings.
export async function runHostHooks(c: ContainerDoc, kind: HostHook, status: StateJson["status"]): Promise<void> {
  const state = stateJson({ id: c.id, status, pid: c.pid ?? 0, bundle: c.bundle, rootfs: c.rootfs, createdAt: c.createdAt, annotations: c.annotations });
  for (const [i, h] of (c.hooks?.[kind] ?? []).entries()) {
    try {
      await runHook(h as HookSpec, `hook ${kind}[${i}]`, state);
    } catch (e) {
      if (FATAL[kind]) throw e;
      log.warn(errorMessage(e));
      process.stderr.write(`husk: warning: ${errorMessage(e)}\n`);
    }
  }
}
