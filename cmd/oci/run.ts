import { defineCommand } from "citty";
import { runContainer } from "../../lib/sandbox/run.ts";
import { context, idArg } from "./context.ts";

export default defineCommand({
  meta: { name: "run", description: "Create and start a container, and wait for it unless --detach" },
  args: {
    id: idArg,
    bundle: { type: "string", alias: "b", description: "path to the bundle directory", default: "." },
    "pid-file": { type: "string", description: "file to write the container's pid to" },
    "console-socket": { type: "string", description: "unix socket that receives the terminal master" },
    detach: { type: "boolean", alias: "d", description: "do not wait for the container to exit" },
    "no-pivot": { type: "boolean", description: "accepted for compatibility" },
    "no-new-keyring": { type: "boolean", description: "accepted for compatibility" },
    "preserve-fds": { type: "string", description: "number of extra fds to pass on" },
  },
  async run({ args }) {
    process.exitCode = await runContainer(await context(), {
      id: args.id,
      bundle: args.bundle,
      pidFile: args["pid-file"],
      consoleSocket: args["console-socket"],
      preserveFds: Number(args["preserve-fds"] ?? 0),
      detach: args.detach === true,
    });
  },
});
