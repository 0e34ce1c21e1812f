import { describe, expect, test } from "vitest";
import { mkdirSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { husk } from "../helpers/husk.ts";
import { FORMATS, openStore } from "../../lib/persist/index.ts";
import { tempRoot, versionedDoc, writeRaw } from "./helpers.ts";

// (A 50 MB buffer is too slow for a deep equality check: compare digests.)
const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

const GOOD = JSON.stringify(versionedDoc("sb", 3), null, 2); // in the format this release writes
const CUR = FORMATS.current;
const CUR_RE = CUR.replace(".", "\\.");

// Each case writes <root>/<id>/persist.json its own way; `expect` is what the
// error must say besides the file and the sandbox.
const CASES: { name: string; id: string; write: (path: string, dir: string) => void; expect: RegExp }[] = [
  {
    name: "truncated JSON",
    id: "trunc",
    write: (p) => writeFileSync(p, JSON.stringify(versionedDoc("trunc", 1), null, 2).slice(0, 150)),
    expect: new RegExp(`not valid JSON.*what could be read: id "trunc", format "${CUR_RE}", state "running"`),
  },
  { name: "a JSON array", id: "arr", write: (p) => writeFileSync(p, "[1, 2]"), expect: /is an array, not a JSON object/ },
  {
    name: "a wrong-typed field",
    id: "typed",
    write: (p) => writeFileSync(p, GOOD.replaceAll('"sb', '"typed').replace('"state": "running"', '"state": 7')),
    expect: new RegExp(`does not match format ${CUR_RE}: state: Invalid type`),
  },
  {
    name: "formatVersion 99.0",
    id: "future",
    write: (p) => writeFileSync(p, GOOD.replaceAll('"sb', '"future').replace(`"${CUR}"`, '"99.0"')),
    expect: /format 99\.0, which is newer than this husk reads \(>=1\.0 <2\.0\); nothing was changed\. Upgrade husk/,
  },
  {
    name: "formatVersion missing",
    id: "nover",
    write: (p) => writeFileSync(p, GOOD.replaceAll('"sb', '"nover').replace(`"formatVersion": "${CUR}",`, "")),
    expect: /formatVersion is missing/,
  },
  {
    name: "a 50 MB file",
    id: "huge",
    write: (p) => {
      writeFileSync(p, GOOD.replaceAll('"sb', '"huge'));
      truncateSync(p, 50 * 1024 * 1024);
    },
    expect: /is 52428800 bytes, over the \d+-byte limit/,
  },
  {
    name: "a symlink where persist.json should be",
    id: "link",
    write: (p, dir) => {
      writeFileSync(join(dir, "elsewhere.json"), GOOD.replaceAll('"sb', '"link'));
      symlinkSync(join(dir, "elsewhere.json"), p);
    },
    expect: /is a symbolic link; husk does not follow it/,
  },
];

describe("husk inspect on a bad persist.json", () => {
  test.each(CASES)("$name: clear error naming file and sandbox, file untouched", ({ id, write, expect: says }) => {
    const root = tempRoot("bad");
    const dir = join(root, id);
    mkdirSync(dir);
    const path = join(dir, "persist.json");
    write(path, dir);
    const before = { sha: sha256(path), mtime: statSync(path).mtimeMs };

    const r = husk(["--root", root, "inspect", id]);
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`${path} (sandbox ${id})`);
    expect(r.stderr).toMatch(says);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace

    expect(sha256(path)).toBe(before.sha);
    expect(statSync(path).mtimeMs).toBe(before.mtime);
  });

  test("--raw prints a corrupt document as stored; unknown ids still fail", () => {
    const root = tempRoot("raw");
    mkdirSync(join(root, "torn"));
    writeFileSync(join(root, "torn", "persist.json"), '{"formatVersion": "1.0", "id": "to');
    const r = husk(["--root", root, "inspect", "--raw", "torn"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('{"formatVersion": "1.0", "id": "to');
    const missing = husk(["--root", root, "inspect", "nothere"]);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain("sandbox nothere does not exist");
  });

  test("a good document prints as pretty JSON", () => {
    const root = tempRoot("good");
    openStore({ root }).save(versionedDoc("fine", 4));
    const r = husk(["--root", root, "inspect", "fine"]);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).annotations.seq).toBe("4");
    expect(r.stdout).toContain('\n  "id": "fine",');
  });
});

describe("sqlite store on a bad row", () => {
  const rows: [string, string, RegExp][] = [
    ["truncated JSON", GOOD.slice(0, 120), /not valid JSON.*id "sb"/],
    ["a JSON array", "[]", /is an array/],
    ["formatVersion 99.0", GOOD.replace(`"${CUR}"`, '"99.0"'), /format 99\.0, which is newer/],
  ];
  test.each(rows)("%s: error names the database row and sandbox, row untouched", (_name, text, says) => {
    const root = tempRoot("badrow");
    const store = openStore({ root, kind: "sqlite" });
    store.save(versionedDoc("sb", 3));
    writeRaw(root, "sqlite", "sb", text);
    const r = husk(["--root", root, "--persist", "sqlite", "inspect", "sb"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`${join(root, "persist.db")} row "sb" (sandbox sb)`);
    expect(r.stderr).toMatch(says);
    expect(store.loadRaw("sb")).toBe(text);
  });
});
