import { defineCommand } from "citty";
import { containerState } from "../../lib/sandbox/state.ts";
import { context, idArg } from "./context.ts";

export default defineCommand({
  meta: { name: "state", description: "Print the state of a container (JSON)" },
  args: { id: idArg },
  async run({ args }) {
    console.log(JSON.stringify(await containerState(await context(), args.id), null, 2));
  },
});
