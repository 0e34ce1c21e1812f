import * as v from "valibot";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { HuskError, describeIssues, errorMessage } from "../lib/core/index.ts";

export const REPO = join(import.meta.dirname, "..");
export const RELEASES_FILE = join(REPO, "compat", "releases.json");
export const BASELINE_DIR = join(REPO, "proto", "baseline");

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/;

// One published release: what a later husk must still manage and talk to.
export const ReleaseSchema = v.object({
  version: v.pipe(v.string(), v.regex(SEMVER, "must be a release version major.minor.patch")),
  // Full hash: the cross-version test builds the release's binary from it.
  commit: v.pipe(v.string(), v.regex(/^[0-9a-f]{40}$/, "must be a full 40-hex git commit")),
  persistFormat: v.pipe(v.string(), v.regex(/^(0|[1-9]\d*)\.(0|[1-9]\d*)$/, "must be a persist format major.minor")),
  // A file name in proto/baseline/, never a path out of it.
  protocolBaseline: v.pipe(v.string(), v.regex(/^[\w.-]+\.binpb$/, "must be a .binpb file name in proto/baseline/")),
  date: v.pipe(v.string(), v.isoDate("must be a date YYYY-MM-DD")),
});
export type Release = v.InferOutput<typeof ReleaseSchema>;

export const ReleasesSchema = v.pipe(
  v.strictObject({ releases: v.pipe(v.array(ReleaseSchema), v.minLength(1, "lists no release")) }),
  v.check((f) => isAscending(f.releases.map((r) => r.version)), "releases must be listed oldest first, each version once"),
);
export type ReleasesFile = v.InferOutput<typeof ReleasesSchema>;

const parts = (version: string) => SEMVER.exec(version)!.slice(1).map(Number);

export function compareVersions(a: string, b: string): number {
  const [x, y] = [parts(a), parts(b)];
  return x[0]! - y[0]! || x[1]! - y[1]! || x[2]! - y[2]!;
}

// Only called once every version has matched SEMVER (v.check runs after the object passes).
const isAscending = (versions: string[]) => versions.every((ver, i) => i === 0 || compareVersions(versions[i - 1]!, ver) < 0);

// Parses releases.json text; the error names the file and the field at fault.
export function parseReleases(text: string, file = RELEASES_FILE): Release[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new HuskError(`${file} is not valid JSON: ${errorMessage(e)}`);
  }
  const result = v.safeParse(ReleasesSchema, raw);
  if (!result.success) throw new HuskError(`${file}: ${describeIssues(result.issues)}`);
  return result.output.releases;
}

export const loadReleases = (file = RELEASES_FILE): Release[] => parseReleases(readFileSync(file, "utf8"), file);

export const baselinePath = (r: Release): string => join(BASELINE_DIR, r.protocolBaseline);

// The releases whose sandboxes `version` promises to manage (docs/compatibility.md):
// its own minor line and the two minor lines before it.
export function promisedReleases(releases: Release[], version: string): Release[] {
  const line = (v: string) => v.split(".").slice(0, 2).join(".");
  const lines = [...new Set(releases.map((r) => line(r.version)))].filter((l) => compareVersions(`${l}.0`, `${line(version)}.0`) < 0);
  const kept = new Set([...lines.slice(-2), line(version)]);
  return releases.filter((r) => kept.has(line(r.version)));
}
