import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { childEnv } from "../config/index.ts";
import { HuskError, selfCommand } from "../core/index.ts";
import type { Context } from "./context.ts";
import { relaySocket } from "./proxy.ts";
import { inContainerView, type ViewSource } from "./shim-view.ts";

export interface ShimTarget {
  sandboxId: string;
  containerId: string;
  execId?: string;
}

// Starts `husk shim` in its own session with the caller's stdio: it is the
// process conmon or containerd's shim waits for, and exits with the
// container's (or exec'd process's) exit status. With a terminal (the slave
// of the pty handed to --console-socket) that is its stdio instead.
// `ignore`: a shim nobody reads from (a container restore brought back beside
// the one it was asked for). Where the sandbox's proxy relays, the shim hands
// its stdio to it and stays small. A container's shim (`view`: its mounts)
// starts in a mount namespace that shows what the host shares with the
// container (shim-view.ts), not the host's root.
export function spawnShim(ctx: Context, t: ShimTarget, terminal?: number | "ignore", view?: ViewSource): number {
  const [cmd, ...pre] = selfCommand();
  const args = [
    ...pre,
    "shim", "--sandbox", t.sandboxId, "--container", t.containerId,
    ...(t.execId ? ["--exec", t.execId] : []),
    ...(typeof terminal === "number" ? ["--tty"] : []),
  ];
  const relay = relaySocket(ctx, t.sandboxId);
  if (existsSync(relay)) args.push("--relay", relay);
  const stdio = typeof terminal === "number" ? [terminal, terminal, terminal] : (terminal ?? "inherit");
  // The shim runs with this command's settings exactly (flags included).
  const argv = view ? inContainerView(ctx.store.sandboxDir(t.sandboxId), view, [cmd!, ...args]) : [cmd!, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio, env: childEnv(ctx.settings) });
  child.unref();
  if (!child.pid) throw new HuskError(`cannot start the shim for container ${t.containerId}`);
  return child.pid;
}
