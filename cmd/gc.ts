import { defineCommand } from "citty";
import { collectAssets, currentAssets } from "../lib/sandbox/gc-assets.ts";
import { collectTemplates } from "../lib/sandbox/template.ts";
import { collectGarbage } from "../lib/sandbox/gc.ts";
import { openContext } from "../lib/sandbox/context.ts";
import { getSettings } from "./globals.ts";

export default defineCommand({
  meta: { name: "gc", description: "Remove sandboxes left half-created or orphaned by a crash (--assets: guest asset versions no sandbox uses)" },
  args: {
    assets: { type: "boolean", description: "remove guest asset versions no sandbox booted, except the one new sandboxes boot" },
    "dry-run": { type: "boolean", description: "only list what would be removed" },
    json: { type: "boolean", description: "print JSON" },
  },
  async run({ args }) {
    const ctx = await openContext(getSettings());
    const dryRun = args["dry-run"] === true;
    if (args.assets) {
      const assets = collectAssets(ctx, { dryRun });
      const templates = collectTemplates(ctx, currentAssets(ctx), { dryRun });
      if (args.json) return console.log(JSON.stringify(assets, null, 2));
      for (const a of assets) console.log(`${a.removed ? "removed" : "kept"} assets ${a.version}: ${a.reason}${a.error ? ` (${a.error})` : ""}`);
      for (const t of templates) console.log(`${t.removed ? "removed" : "kept"} VM template ${t.key}: ${t.reason}`);
      if (assets.some((a) => a.error)) process.exitCode = 1;
      return;
    }
    const entries = await collectGarbage(ctx, { dryRun });
    if (args.json) return console.log(JSON.stringify(entries, null, 2));
    for (const e of entries)
      console.log(`${e.removed ? "removed" : "kept"} ${e.sandbox}: ${e.reason}${e.error ? ` (${e.error})` : ""}`);
    if (entries.some((e) => e.error)) process.exitCode = 1;
  },
});
