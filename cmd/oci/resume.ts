import { defineCommand } from "citty";
import { resumeContainer } from "../../lib/sandbox/pause.ts";
import { context, idArg } from "./context.ts";

export default defineCommand({
  meta: { name: "resume", description: "Resume every process of a paused container" },
  args: { id: idArg },
  async run({ args }) {
    await resumeContainer(await context(), args.id);
  },
});
