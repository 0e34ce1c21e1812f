import { defineCommand } from "citty";
import { HuskError } from "../../lib/core/index.ts";
import { restoreContainer } from "../../lib/sandbox/restore.ts";
import { context, idArg, restoreCompatArgs } from "./context.ts";

export default defineCommand({
  meta: { name: "restore", description: "Restore a checkpointed sandbox and its containers (cloud-hypervisor, QEMU 10+)" },
  args: {
    id: idArg,
    "image-path": { type: "string", description: "directory of the checkpoint" },
    bundle: { type: "string", alias: "b", description: "the container's bundle, if not the one it was checkpointed with" },
    detach: { type: "boolean", alias: "d", description: "accepted: restore always returns once the sandbox runs" },
    "pid-file": { type: "string", description: "file to write the container's pid (its shim's) to" },
    "console-socket": { type: "string", description: "unix socket that receives the terminal master" },
    ...restoreCompatArgs,
  },
  async run({ args }) {
    if (!args["image-path"]) throw new HuskError("restore: --image-path <dir> is required");
    await restoreContainer(await context(), args.id, {
      imagePath: args["image-path"], bundle: args.bundle, pidFile: args["pid-file"], consoleSocket: args["console-socket"],
    });
  },
});
