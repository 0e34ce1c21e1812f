import { defineCommand } from "citty";
import { existsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { HuskError } from "../../lib/core/index.ts";
import { defaultSpec } from "../../lib/oci/index.ts";

export default defineCommand({
  meta: { name: "spec", description: "Write a new default config.json to the bundle directory" },
  args: {
    bundle: { type: "string", alias: "b", description: "bundle directory", default: "." },
    rootless: { type: "boolean", description: "a spec for a rootless container (not supported)" },
  },
  run({ args }) {
    if (args.rootless) throw new HuskError("spec --rootless: rootless containers are not supported by husk");
    const file = join(resolve(args.bundle), "config.json");
    if (existsSync(file)) throw new HuskError(`File ${file} exists. Remove it first`);
    writeFileSync(file, JSON.stringify(defaultSpec(), null, 2) + "\n", { flag: "wx" });
  },
});
