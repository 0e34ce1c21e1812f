import { defineCommand } from "citty";
import { createContainer } from "../../lib/sandbox/create.ts";
import { context, idArg } from "./context.ts";

export default defineCommand({
  meta: { name: "create", description: "Create a container (its process waits for start)" },
  args: {
    id: idArg,
    bundle: { type: "string", alias: "b", description: "path to the bundle directory", default: "." },
    "pid-file": { type: "string", description: "file to write the container's pid to" },
    "console-socket": { type: "string", description: "unix socket that receives the terminal master" },
    "no-pivot": { type: "boolean", description: "accepted for compatibility" },
    "no-new-keyring": { type: "boolean", description: "accepted for compatibility" },
    "preserve-fds": { type: "string", description: "number of extra fds to pass on (not supported beyond 0)" },
    "pidfd-socket": { type: "string", description: "accepted for compatibility" },
  },
  async run({ args }) {
    await createContainer(await context(), {
      id: args.id,
      bundle: args.bundle,
      pidFile: args["pid-file"],
      consoleSocket: args["console-socket"],
      preserveFds: Number(args["preserve-fds"] ?? 0),
    });
  },
});
