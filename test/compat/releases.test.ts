import { describe, expect, test } from "vitest";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FORMATS } from "../../lib/persist/index.ts";
import { VERSION } from "../../lib/core/index.ts";
import { REPO, RELEASES_FILE, baselinePath, compareVersions, loadReleases, parseReleases, promisedReleases } from "../../compat/index.ts";

const releases = loadReleases();
const good = JSON.parse(readFileSync(RELEASES_FILE, "utf8")).releases[0];
const withReleases = (list: unknown[]) => JSON.stringify({ releases: list });
const refusal = (text: string) => {
  try {
    parseReleases(text, "releases.json");
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("accepted");
};

const major = (format: string) => Number(format.split(".")[0]);

describe("compat/releases.json", () => {
  test("lists 0.1.0 first, oldest to newest, none newer than this tree", () => {
    expect(releases[0]!.version).toBe("0.1.0");
    for (const r of releases) expect(compareVersions(r.version, VERSION)).toBeLessThanOrEqual(0);
  });

  test.each(releases.map((r) => [r.version, r] as const))("%s has its baseline image and golden fixtures", (_, r) => {
    expect(existsSync(baselinePath(r)), baselinePath(r)).toBe(true);
    const fixtures = join(REPO, "test", "fixtures", "persist", r.persistFormat);
    expect(existsSync(join(fixtures, "SHA256SUMS")), `${fixtures}/SHA256SUMS`).toBe(true);
  });

  // The promise of docs/compatibility.md: this release reads what the two
  // previous minor releases (and every release of this major line) write.
  test("this release reads the persist format of every release it promises to manage", () => {
    const promised = promisedReleases(releases, VERSION);
    expect(promised.length).toBeGreaterThan(0);
    const majors = FORMATS.steps.map((s) => major(s.version));
    for (const r of promised) expect(majors, `format ${r.persistFormat} of ${r.version}`).toContain(major(r.persistFormat));
  });

  test("the promise covers this minor line and the two before it", () => {
    const list = ["0.1.0", "0.1.1", "0.2.0", "0.3.0", "0.3.2", "0.4.0", "1.0.0"].map((version) => ({ ...good, version }));
    const versions = (v: string) => promisedReleases(list, v).map((r) => r.version);
    expect(versions("0.4.1")).toEqual(["0.2.0", "0.3.0", "0.3.2", "0.4.0"]);
    expect(versions("1.0.0")).toEqual(["0.3.0", "0.3.2", "0.4.0", "1.0.0"]);
    expect(versions("0.1.0")).toEqual(["0.1.0", "0.1.1"]);
  });
});

describe("a broken releases.json is refused, naming the field", () => {
  test("short commit, path as baseline, bad date, bad version", () => {
    expect(refusal(withReleases([{ ...good, commit: good.commit.slice(0, 12) }]))).toMatch(/releases\.0\.commit: must be a full 40-hex git commit/);
    expect(refusal(withReleases([{ ...good, protocolBaseline: "../../etc/x.binpb" }]))).toMatch(/releases\.0\.protocolBaseline: must be a \.binpb file name/);
    expect(refusal(withReleases([{ ...good, date: "22/11/2026" }]))).toMatch(/releases\.0\.date: must be a date/);
    expect(refusal(withReleases([{ ...good, version: "v0.1" }]))).toMatch(/releases\.0\.version: must be a release version/);
    expect(refusal(withReleases([{ ...good, persistFormat: 1 }]))).toMatch(/releases\.0\.persistFormat: /);
    const { commit: _, ...noCommit } = good;
    expect(refusal(withReleases([noCommit]))).toMatch(/releases\.0\.commit: /);
  });

  test("releases out of order or listed twice, none at all, not JSON", () => {
    const later = { ...good, version: "0.2.0" };
    expect(refusal(withReleases([later, good]))).toMatch(/oldest first, each version once/);
    expect(refusal(withReleases([good, good]))).toMatch(/oldest first, each version once/);
    expect(parseReleases(withReleases([good, later])).map((r) => r.version)).toEqual(["0.1.0", "0.2.0"]);
    expect(refusal(withReleases([]))).toMatch(/lists no release/);
    expect(refusal("{ releases: ")).toMatch(/^releases\.json is not valid JSON/);
  });
});
