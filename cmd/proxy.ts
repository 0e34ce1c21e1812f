import { defineCommand } from "citty";
import { runProxy } from "../lib/sandbox/proxy-run.ts";
import { openContext } from "../lib/sandbox/context.ts";
import { getSettings } from "./globals.ts";

// Internal: started for a VM sandbox, holds its one agent channel.
export default defineCommand({
  meta: { name: "proxy", description: "(internal) share a VM's agent channel among husk processes", hidden: true },
  args: { sandbox: { type: "string", required: true, description: "sandbox id" } },
  async run({ args }) {
    await runProxy(await openContext(getSettings()), args.sandbox);
  },
});
