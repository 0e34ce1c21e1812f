import { defineCommand } from "citty";
import { createContainer } from "../../lib/sandbox/create.ts";
import { context, createArgs } from "./context.ts";
import { globalOptions } from "../globals.ts";

export default defineCommand({
  meta: { name: "create", description: "Create a container (its process waits for start)" },
  args: {
    ...createArgs,
    "pidfd-socket": { type: "string", description: "accepted for compatibility" },
  },
  async run({ args }) {
    await createContainer(await context(), {
      id: args.id,
      bundle: args.bundle,
      pidFile: args["pid-file"],
      consoleSocket: args["console-socket"],
      preserveFds: Number(args["preserve-fds"] ?? 0),
      systemdCgroup: globalOptions().systemdCgroup === true,
    });
  },
});
