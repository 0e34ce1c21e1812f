import { defineCommand } from "citty";
import { createContainer } from "../../lib/sandbox/create.ts";
import { context, createArgs, createOptions } from "./context.ts";

export default defineCommand({
  meta: { name: "create", description: "Create a container (its process waits for start)" },
  args: {
    ...createArgs,
    "pidfd-socket": { type: "string", description: "accepted for compatibility" },
  },
  async run({ args }) {
    await createContainer(await context(), createOptions(args));
  },
});
