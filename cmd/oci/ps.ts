import { defineCommand } from "citty";
import { listProcesses, publishedProcesses } from "../../lib/sandbox/ps.ts";
import { context, idArg } from "./context.ts";
import { formatTable } from "./table.ts";

// As runc's users read it: `--format json` is the pids published with
// --pid-file (init's, then each exec's); the table lists every process of
// the container, PID being that published pid (or "-": the process has none
// on the host) beside its pid in the sandbox (the guest, for a VM).
export default defineCommand({
  meta: { name: "ps", description: "List the processes of a container" },
  args: {
    id: idArg,
    format: { type: "enum", alias: "f", options: ["table", "json"], default: "table", description: "output format" },
  },
  async run({ args }) {
    const ctx = await context();
    if (args.format === "json") return console.log(JSON.stringify(await publishedProcesses(ctx, args.id)));
    const rows = (await listProcesses(ctx, args.id)).map((p) => [p.pid ?? "-", p.sandboxPid, p.ppid, p.args.join(" ")]);
    process.stdout.write(formatTable([["PID", "SANDBOX-PID", "SANDBOX-PPID", "CMD"], ...rows]));
  },
});
