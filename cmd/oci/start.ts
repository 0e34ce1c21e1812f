import { defineCommand } from "citty";
import { startContainer } from "../../lib/sandbox/start.ts";
import { context, idArg } from "./context.ts";

export default defineCommand({
  meta: { name: "start", description: "Start the user process of a created container" },
  args: { id: idArg },
  async run({ args }) {
    await startContainer(await context(), args.id);
  },
});
