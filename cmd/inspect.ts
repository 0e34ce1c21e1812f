import { defineCommand } from "citty";
import { openStore } from "../lib/persist/index.ts";
import { getSettings } from "./globals.ts";

export default defineCommand({
  meta: { name: "inspect", description: "Print a sandbox's persist document" },
  args: {
    id: { type: "positional", description: "sandbox id", required: true },
    raw: { type: "boolean", description: "print the document exactly as stored, without checking it" },
  },
  run({ args }) {
    const store = openStore(getSettings());
    try {
      if (args.raw) process.stdout.write(store.loadRaw(args.id));
      else console.log(JSON.stringify(store.load(args.id), null, 2));
    } finally {
      store.close();
    }
  },
});
