import { defineCommand } from "citty";
import { HuskError } from "../../lib/core/index.ts";
import { checkpointContainer } from "../../lib/sandbox/checkpoint.ts";
import { context, criuCompatArgs, idArg } from "./context.ts";

export default defineCommand({
  meta: { name: "checkpoint", description: "Save the sandbox VM holding a container (cloud-hypervisor, QEMU 10+)" },
  args: {
    id: idArg,
    "image-path": { type: "string", description: "directory for the checkpoint (new or empty)" },
    "leave-running": { type: "boolean", description: "resume the sandbox after the checkpoint" },
    ...criuCompatArgs,
    "work-path": { type: "string", description: "directory for the dump's statistics (stats-dump); default: the image path" },
  },
  async run({ args }) {
    if (!args["image-path"]) throw new HuskError("checkpoint: --image-path <dir> is required");
    await checkpointContainer(await context(), args.id, {
      imagePath: args["image-path"], workPath: args["work-path"], leaveRunning: args["leave-running"] === true,
    });
  },
});
