import { defineCommand } from "citty";
import { configureLog } from "../lib/core/index.ts";
import { join } from "node:path";
import { openContext } from "../lib/sandbox/context.ts";
import { runShim } from "../lib/sandbox/shim.ts";
import { getSettings } from "./globals.ts";

// Internal: spawned by `husk create` / `husk exec --detach`. Its stdio belongs
// to the container, so its own messages go to a log in the sandbox directory.
export default defineCommand({
  meta: { name: "shim", description: "(internal) stand for a container process on the host", hidden: true },
  args: {
    sandbox: { type: "string", required: true, description: "sandbox id" },
    container: { type: "string", required: true, description: "container id" },
    exec: { type: "string", description: "exec id of an extra process" },
    tty: { type: "boolean", description: "stdio is a terminal: take it as controlling tty and relay resizes" },
  },
  async run({ args }) {
    const ctx = await openContext(getSettings());
    configureLog({ path: join(ctx.store.sandboxDir(args.sandbox), "shim.log"), format: "json", debug: false });
    process.exitCode = await runShim(ctx, { sandboxId: args.sandbox, containerId: args.container, execId: args.exec }, { tty: args.tty === true });
  },
});
