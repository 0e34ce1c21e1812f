import { defineCommand } from "citty";
import { deleteContainer } from "../../lib/sandbox/delete.ts";
import { context, idArg } from "./context.ts";

export default defineCommand({
  meta: { name: "delete", description: "Delete a container and whatever it holds" },
  args: {
    id: idArg,
    force: { type: "boolean", alias: "f", description: "kill a running container first" },
  },
  async run({ args }) {
    await deleteContainer(await context(), args.id, args.force === true);
  },
});
