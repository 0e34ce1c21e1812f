import { defineCommand } from "citty";
import { runAgent } from "../lib/agent/index.ts";
import { getSettings } from "./globals.ts";

export default defineCommand({
  meta: { name: "agent", description: "Serve the agent protocol and run containers (in a guest, or on the host for local)" },
  args: {
    listen: { type: "string", required: true, description: "unix:<path>, device:<path> (virtio-serial port) or fd:<n>" },
    runtime: { type: "string", description: "OCI runtime binary (default: settings)" },
    "state-dir": { type: "string", description: "the agent's private state directory", default: "/run/husk-agent" },
    guest: { type: "boolean", description: "running inside a VM: mount shares and set the hostname" },
  },
  async run({ args }) {
    await runAgent({
      listen: args.listen,
      runtime: args.runtime ?? getSettings().ociRuntime,
      stateDir: args["state-dir"],
      guest: args.guest === true,
    });
  },
});
