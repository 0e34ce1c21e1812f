import { describe, expect, test } from "vitest";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openStore } from "../../lib/persist/index.ts";
import { CHILDREN, KINDS, content, run, tempRoot, versionedDoc } from "./helpers.ts";

const KILLS = 200;
const LANES = 2; // sandboxes saved and killed side by side, each in its own sandbox

// Versions the log says may be on disk after a kill: the last one known to be
// there ("L": loaded at child start, "A": save returned) and the one being
// saved when the kill came ("B" without its "A").
function allowedVersions(log: string): number[] {
  let done = 0;
  let pending: number | undefined;
  for (const line of readFileSync(log, "utf8").trim().split("\n")) {
    const n = Number(line.slice(2));
    if (line[0] === "B") pending = n;
    else [done, pending] = [n, undefined];
  }
  return pending === undefined ? [done] : [done, pending];
}

async function killLoop(root: string, kind: "fs" | "sqlite", id: string, kills: number) {
  const log = join(root, `${id}.log`);
  writeFileSync(log, "A 0\n");
  let midSave = 0;
  for (let k = 0; k < kills; k++) {
    const child = run([join(CHILDREN, "saver.ts"), root, kind, id, log]);
    await child.stdout.getReader().read(); // "ready": the store is open, saves begin
    await Bun.sleep(Math.random() * 25);
    child.kill("SIGKILL");
    await child.exited;
    const store = openStore({ root, kind }); // a fresh process would see exactly this
    try {
      const doc = store.load(id);
      const n = Number(doc.annotations!.seq);
      const allowed = allowedVersions(log);
      expect(allowed).toContain(n);
      expect(content(doc)).toEqual(content(versionedDoc(id, n)));
      if (allowed.length === 2) midSave++;
    } finally {
      store.close();
    }
  }
  return midSave;
}

describe.each(KINDS)("crash safety, %s store", (kind) => {
  test(`${KILLS} SIGKILLs during saves leave the last or the previous version`, async () => {
    const root = tempRoot(`crash-${kind}`);
    const ids = Array.from({ length: LANES }, (_, i) => `crash-${i}`);
    const store = openStore({ root, kind });
    for (const id of ids) await store.create(versionedDoc(id, 0));
    store.close();

    const midSave = await Promise.all(ids.map((id) => killLoop(root, kind, id, KILLS / LANES)));
    // Most kills must land while a save is under way, or the test proves little.
    expect(midSave.reduce((a, b) => a + b)).toBeGreaterThan(KILLS / 4);

    if (kind === "fs")
      for (const id of ids) {
        // Temp files of killed writers are swept when the lock is next taken:
        // at most the last child's can remain.
        const stray = readdirSync(join(root, id)).filter((f) => f.endsWith(".tmp"));
        expect(stray.length).toBeLessThanOrEqual(1);
        expect(existsSync(join(root, id, "persist.json"))).toBe(true);
      }
  }, 300_000);
});
