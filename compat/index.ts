// Releases and what each one promises later releases: see docs/compatibility.md.
export {
  BASELINE_DIR,
  REPO,
  RELEASES_FILE,
  ReleaseSchema,
  ReleasesSchema,
  baselinePath,
  compareVersions,
  loadReleases,
  parseReleases,
  promisedReleases,
  type Release,
  type ReleasesFile,
} from "./releases.ts";
export { defaultCacheDir, releaseBinary, type BuildOptions } from "./build.ts";
export { BUF, bufBreaking, bufBuild, imageAtCommit, type BufResult } from "./buf.ts";
