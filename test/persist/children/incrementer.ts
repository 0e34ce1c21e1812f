// Concurrency-test child: `count` read-modify-write increments under the lock.
import { openStore, type StoreKind } from "../../../lib/persist/index.ts";

const [root, kind, id, count] = process.argv.slice(2) as [string, StoreKind, string, string];
const store = openStore({ root, kind });
for (let i = 0; i < Number(count); i++) {
  await store.update(id, (doc) => {
    doc.annotations = { ...doc.annotations, counter: String(Number(doc.annotations?.counter ?? 0) + 1) };
  });
}
store.close();
