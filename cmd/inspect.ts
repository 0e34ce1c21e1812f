import { defineCommand } from "citty";
import { openStore } from "../lib/persist/index.ts";
import { getSettings } from "./globals.ts";
import { context } from "./oci/context.ts";

export default defineCommand({
  meta: { name: "inspect", description: "Print a sandbox's persist document, or what its agent reports" },
  args: {
    id: { type: "positional", description: "sandbox id", required: true },
    raw: { type: "boolean", description: "print the document exactly as stored, without checking it" },
    guest: { type: "boolean", description: "ask the sandbox's agent: its machine, and what it holds for containers" },
  },
  async run({ args }) {
    if (args.guest) {
      const { guestDetails } = await import("../lib/sandbox/guest-details.ts");
      console.log(JSON.stringify(await guestDetails(await context(), args.id), null, 2));
      return;
    }
    const store = openStore(getSettings());
    try {
      if (args.raw) process.stdout.write(store.loadRaw(args.id));
      else console.log(JSON.stringify(store.load(args.id), null, 2));
    } finally {
      store.close();
    }
  },
});
