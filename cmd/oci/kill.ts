import { defineCommand } from "citty";
import { parseSignal } from "../../lib/oci/index.ts";
import { killContainer } from "../../lib/sandbox/kill.ts";
import { context, idArg } from "./context.ts";

export default defineCommand({
  meta: { name: "kill", description: "Send a signal (default TERM) to the container's init process" },
  args: {
    id: idArg,
    signal: { type: "positional", description: "signal name or number", required: false, default: "TERM" },
    all: { type: "boolean", alias: "a", description: "send the signal to every process of the container" },
  },
  async run({ args }) {
    await killContainer(await context(), args.id, parseSignal(args.signal), args.all === true);
  },
});
