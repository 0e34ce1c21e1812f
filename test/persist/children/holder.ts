// Takes a sandbox lock, says so, and holds it until killed.
import { openStore, type StoreKind } from "../../../lib/persist/index.ts";

const [root, kind, id] = process.argv.slice(2) as [string, StoreKind, string];
await openStore({ root, kind }).lock(id);
process.stdout.write("locked\n");
setInterval(() => {}, 1 << 30);
