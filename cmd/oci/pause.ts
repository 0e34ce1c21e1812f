import { defineCommand } from "citty";
import { pauseContainer } from "../../lib/sandbox/pause.ts";
import { context, idArg } from "./context.ts";

export default defineCommand({
  meta: { name: "pause", description: "Suspend every process of a container" },
  args: { id: idArg },
  async run({ args }) {
    await pauseContainer(await context(), args.id);
  },
});
