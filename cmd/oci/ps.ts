import { defineCommand } from "citty";
import { listProcesses } from "../../lib/sandbox/ps.ts";
import { context, idArg } from "./context.ts";

export default defineCommand({
  meta: { name: "ps", description: "List the processes of a container" },
  args: {
    id: idArg,
    format: { type: "enum", alias: "f", options: ["table", "json"], default: "table", description: "output format" },
  },
  async run({ args }) {
    const procs = await listProcesses(await context(), args.id);
    if (args.format === "json") {
      console.log(JSON.stringify(procs.map((p) => p.pid)));
      return;
    }
    console.log("PID\tPPID\tCMD");
    for (const p of procs) console.log(`${p.pid}\t${p.ppid}\t${p.args.join(" ")}`);
  },
});
