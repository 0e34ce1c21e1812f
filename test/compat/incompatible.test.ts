import { afterAll, describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUN } from "../helpers/husk.ts";
import { REPO } from "../../compat/index.ts";

// The guards of docs/compatibility.md catch a deliberately incompatible change,
// made in a temporary copy: the tree itself is never touched. (A renumbered
// proto field failing buf breaking is test/protocol/buf.test.ts; every
// release's baseline is checked by cross-version.test.ts.)

const temps: string[] = [];
const temp = (tag: string) => temps[temps.push(mkdtempSync(join(tmpdir(), `husk-incompat-${tag}-`))) - 1]!;
// rm never follows the copies' links into the real tree.
afterAll(() => temps.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

// Replaces exactly one occurrence, so a test never edits something it did not mean to.
function editOnce(file: string, from: string, to: string): void {
  const text = readFileSync(file, "utf8");
  expect(text.split(from)).toHaveLength(2);
  writeFileSync(file, text.replace(from, to));
}

// The real fixture test (test/persist/fixtures.test.ts), run by a nested vitest
// on a copy of the tree whose golden fixtures may have been edited.
function runFixtureTest(edit?: (fixtures: string) => void) {
  const fixtureTest = join(REPO, "test", "persist", "fixtures.test.ts");
  if (!existsSync(fixtureTest)) throw new Error(`${fixtureTest} is missing: the golden fixtures are unguarded`);
  const dir = temp("fixtures");
  for (const link of ["node_modules", "lib", "package.json", "tsconfig.json"]) symlinkSync(join(REPO, link), join(dir, link));
  mkdirSync(join(dir, "test", "fixtures"), { recursive: true });
  symlinkSync(join(REPO, "test", "helpers"), join(dir, "test", "helpers"));
  cpSync(join(REPO, "test", "persist"), join(dir, "test", "persist"), { recursive: true });
  cpSync(join(REPO, "test", "fixtures", "persist"), join(dir, "test", "fixtures", "persist"), { recursive: true });
  edit?.(join(dir, "test", "fixtures", "persist"));
  const vitest = join(REPO, "node_modules", ".bin", "vitest");
  const r = spawnSync(BUN, ["--bun", vitest, "run", "--root", dir, "test/persist/fixtures.test.ts"], {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
    timeout: 120_000,
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe("the golden fixture test", () => {
  test("passes on an unedited copy of the fixtures", () => {
    const r = runFixtureTest();
    expect(r.output).toMatch(/Tests\s+\d+ passed/);
    expect(r.status, r.output).toBe(0);
  }, 150_000);

  test("fails when one byte of a released fixture changes, naming the file", () => {
    // 10:00 -> 11:00: still a valid 1.0 document, so only the manifest can notice.
    const r = runFixtureTest((fixtures) => editOnce(join(fixtures, "1.0", "minimal.json"), "T10:00:00", "T11:00:00"));
    expect(r.status).not.toBe(0);
    expect(r.output).toMatch(/FAIL .*golden fixtures of format 1\.0 > are exactly the files in SHA256SUMS, unedited/);
    expect(r.output).toMatch(/minimal\.json [0-9a-f]{64}/);
  }, 150_000);
});
