import { defineCommand } from "citty";
import { dirname, join } from "node:path";
import { configureLog, log } from "../lib/core/index.ts";
import { ownIO, relayThroughProxy } from "../lib/relay/index.ts";
import { getSettings } from "./globals.ts";

// Internal: spawned by `husk create` / `husk exec --detach` / `husk restore`
// as the process that stands for a container process on the host. Its stdio
// belongs to the container, so its own messages go to a log in the sandbox
// directory. With --relay it hands its stdio to the sandbox's proxy and stays
// small; without, or when the relay is lost, it talks to the agent itself
// (loading that machinery only then).
export default defineCommand({
  meta: { name: "shim", description: "(internal) stand for a container process on the host", hidden: true },
  args: {
    sandbox: { type: "string", required: true, description: "sandbox id" },
    container: { type: "string", required: true, description: "container id" },
    exec: { type: "string", description: "exec id of an extra process" },
    tty: { type: "boolean", description: "stdio is a terminal: take it as controlling tty and relay resizes" },
    relay: { type: "string", description: "the proxy's relay socket" },
  },
  async run({ args }) {
    const t = { sandboxId: args.sandbox, containerId: args.container, execId: args.exec };
    const tty = args.tty === true;
    const io = ownIO(tty);
    if (args.relay) {
      // The relay socket sits in the sandbox directory (or an alias of it).
      configureLog({ path: join(dirname(args.relay), "shim.log"), format: "json", debug: false });
      const end = await relayThroughProxy(args.relay, { ...t, tty }, io);
      if ("exit" in end) return void (process.exitCode = end.exit);
      log.warn(`shim: the relay through the proxy ended (${end.lost}); relaying by itself`);
    }
    const { openContext, runShim } = await import("../lib/sandbox/index.ts");
    const ctx = await openContext(getSettings());
    configureLog({ path: join(ctx.store.sandboxDir(args.sandbox), "shim.log"), format: "json", debug: false });
    process.exitCode = await runShim(ctx, t, io, { tty });
  },
});
