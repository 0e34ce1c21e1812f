import { describe, expect, test } from "vitest";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openStore, type SandboxDoc } from "../../lib/persist/index.ts";
import { content, KINDS, tempRoot } from "./helpers.ts";

// Golden documents of every released format. Every future release must load
// them; they are never edited, only added to (with a new line in SHA256SUMS).
const FIXTURE_ROOT = join(import.meta.dirname, "..", "fixtures", "persist");
const VERSIONS = readdirSync(FIXTURE_ROOT).filter((d) => /^\d+\.\d+$/.test(d));

function manifest(dir: string): Map<string, string> {
  const lines = readFileSync(join(dir, "SHA256SUMS"), "utf8").trim().split("\n");
  return new Map(lines.map((l) => l.split(/\s+/)).map(([hash, name]) => [name!, hash!]));
}

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

test("format 1.0 has golden fixtures", () => {
  expect(VERSIONS).toContain("1.0");
  expect(manifest(join(FIXTURE_ROOT, "1.0")).size).toBeGreaterThanOrEqual(4);
});

describe.each(VERSIONS)("golden fixtures of format %s", (version) => {
  const dir = join(FIXTURE_ROOT, version);
  const names = readdirSync(dir).filter((f) => f.endsWith(".json"));

  test("are exactly the files in SHA256SUMS, unedited", () => {
    const sums = manifest(dir);
    expect(names.sort()).toEqual([...sums.keys()].sort());
    for (const name of names) expect(`${name} ${sha256(join(dir, name))}`).toBe(`${name} ${sums.get(name)}`);
  });

  describe.each(KINDS)("in the %s store", (kind) => {
    test.each(names)("%s loads and round-trips", (name) => {
      const text = readFileSync(join(dir, name), "utf8");
      const original = JSON.parse(text);
      const root = tempRoot("fixture");
      // A fixture enters through the fs layout, as a release would have left it...
      mkdirSync(join(root, original.id));
      copyFileSync(join(dir, name), join(root, original.id, "persist.json"));
      const doc = openStore({ root }).load(original.id);
      expect(doc.id).toBe(original.id);
      // ...and is then saved by this release into the store under test.
      const store = openStore({ root: tempRoot("fixture-rt"), kind });
      store.save(doc);
      const again = store.load(original.id);
      expect(again).toEqual({ ...doc, formatVersion: store.formats.current, writtenBy: expect.anything() });
      if (version === store.formats.current) {
        // Same format: nothing but the writer's stamp changes, unknown to us or not.
        const raw = JSON.parse(store.loadRaw(original.id)) as SandboxDoc;
        expect(content(raw)).toEqual(content(original));
        expect(raw.createdBy).toEqual(original.createdBy);
      }
      store.close();
    });
  });
});
