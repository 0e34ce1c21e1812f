import { defineCommand } from "citty";
import { collectGarbage } from "../lib/sandbox/gc.ts";
import { openContext } from "../lib/sandbox/context.ts";
import { getSettings } from "./globals.ts";

export default defineCommand({
  meta: { name: "gc", description: "Remove sandboxes left half-created or orphaned by a crash" },
  args: {
    "dry-run": { type: "boolean", description: "only list what would be removed" },
    json: { type: "boolean", description: "print JSON" },
  },
  async run({ args }) {
    const entries = await collectGarbage(await openContext(getSettings()), { dryRun: args["dry-run"] === true });
    if (args.json) return console.log(JSON.stringify(entries, null, 2));
    for (const e of entries)
      console.log(`${e.removed ? "removed" : "kept"} ${e.sandbox}: ${e.reason}${e.error ? ` (${e.error})` : ""}`);
    if (entries.some((e) => e.error)) process.exitCode = 1;
  },
});
