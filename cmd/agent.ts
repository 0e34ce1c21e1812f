import { defineCommand } from "citty";
import { runAgent } from "../lib/agent/index.ts";
import { HuskError } from "../lib/core/index.ts";
import { getSettings } from "./globals.ts";

export default defineCommand({
  meta: { name: "agent", description: "Serve the agent protocol and run containers (in a guest, or on the host for local)" },
  args: {
    listen: { type: "string", alias: "channel", description: "unix:<path>, virtio-serial:<port name>, device:<path> or fd:<n>" },
    runtime: { type: "string", description: "OCI runtime binary (default: settings)" },
    "state-dir": { type: "string", description: "the agent's private state directory", default: "/run/husk-agent" },
    guest: { type: "boolean", description: "running inside a VM: mount shares and set the hostname (implied by a virtio-serial channel)" },
  },
  async run({ args }) {
    if (!args.listen) throw new HuskError("agent: --listen (or --channel) is required");
    await runAgent({
      listen: args.listen,
      runtime: args.runtime ?? getSettings().ociRuntime,
      stateDir: args["state-dir"],
      guest: args.guest === true || !args.listen.startsWith("unix:"),
    });
  },
});
