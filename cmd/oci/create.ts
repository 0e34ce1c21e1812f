import { defineCommand } from "citty";
import { createContainer } from "../../lib/sandbox/create.ts";
import { context, createArgs, warnSystemdCgroup } from "./context.ts";

export default defineCommand({
  meta: { name: "create", description: "Create a container (its process waits for start)" },
  args: {
    ...createArgs,
    "pidfd-socket": { type: "string", description: "accepted for compatibility" },
  },
  async run({ args }) {
    warnSystemdCgroup();
    await createContainer(await context(), {
      id: args.id,
      bundle: args.bundle,
      pidFile: args["pid-file"],
      consoleSocket: args["console-socket"],
      preserveFds: Number(args["preserve-fds"] ?? 0),
    });
  },
});
