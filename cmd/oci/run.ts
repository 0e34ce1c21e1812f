import { defineCommand } from "citty";
import { runContainer } from "../../lib/sandbox/run.ts";
import { context, createArgs, createOptions } from "./context.ts";

export default defineCommand({
  meta: { name: "run", description: "Create and start a container, and wait for it unless --detach" },
  args: {
    ...createArgs,
    detach: { type: "boolean", alias: "d", description: "do not wait for the container to exit" },
    "no-subreaper": { type: "boolean", description: "accepted for compatibility" },
  },
  async run({ args }) {
    process.exitCode = await runContainer(await context(), { ...createOptions(args), detach: args.detach === true });
  },
});
