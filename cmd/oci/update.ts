import { defineCommand } from "citty";
import { readFileSync } from "node:fs";
import { HuskError, errorMessage } from "../../lib/core/index.ts";
import { updateContainer } from "../../lib/sandbox/update.ts";
import { context, idArg } from "./context.ts";

function readResources(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path === "-" ? 0 : path, "utf8"));
  } catch (e) {
    throw new HuskError(`update --resources ${path}: ${errorMessage(e)}`);
  }
}

export default defineCommand({
  meta: { name: "update", description: "Update a container's resource limits" },
  args: {
    id: idArg,
    resources: { type: "string", alias: "r", description: "JSON file with linux resources, or - for stdin" },
  },
  async run({ args }) {
    if (!args.resources) throw new HuskError("update: give --resources <file|->; single-value flags are not supported");
    await updateContainer(await context(), args.id, readResources(args.resources));
  },
});
