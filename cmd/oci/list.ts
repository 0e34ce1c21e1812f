import { defineCommand } from "citty";
import { listContainers } from "../../lib/sandbox/state.ts";
import { context } from "./context.ts";
import { formatTable, rfc3339Nano } from "./table.ts";

export default defineCommand({
  meta: { name: "list", description: "List the containers under --root" },
  args: {
    format: { type: "enum", alias: "f", options: ["table", "json"], default: "table", description: "output format" },
    quiet: { type: "boolean", alias: "q", description: "print only ids" },
  },
  async run({ args }) {
    const states = await listContainers(await context());
    if (args.quiet) return states.forEach((s) => console.log(s.id));
    if (args.format === "json") return console.log(JSON.stringify(states));
    const rows = states.map((s) => [s.id, s.pid, s.status, s.bundle, rfc3339Nano(s.created), s.owner || "root"]);
    process.stdout.write(formatTable([["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], ...rows]));
  },
});
