// Crash-test child: saves version after version of one document until killed,
// logging "L n" for the version it starts from, then "B n" before and "A n"
// after each save.
import { appendFileSync } from "node:fs";
import { openStore, type StoreKind } from "../../../lib/persist/index.ts";
import { versionedDoc } from "../helpers.ts";

const [root, kind, id, log] = process.argv.slice(2) as [string, StoreKind, string, string];
const store = openStore({ root, kind });
let n = Number(store.load(id).annotations!.seq);
appendFileSync(log, `L ${n}\n`);
process.stdout.write("ready\n");
for (;;) {
  n++;
  appendFileSync(log, `B ${n}\n`);
  await store.update(id, () => versionedDoc(id, n));
  appendFileSync(log, `A ${n}\n`);
}
