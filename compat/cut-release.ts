// `bun compat/cut-release.ts <version> [--commit <rev>]` (docs/releasing.md):
// records a release in compat/releases.json and freezes its protocol image in
// proto/baseline/. Re-running it for the newest release re-points that release
// (allowed only until it is published); older records are never touched.
import { spawnSync } from "node:child_process";
import { existsSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HuskError, errorMessage } from "../lib/core/index.ts";
import { imageAtCommit } from "./buf.ts";
import { releaseBinary } from "./build.ts";
import { BASELINE_DIR, REPO, RELEASES_FILE, compareVersions, loadReleases, parseReleases, type Release } from "./releases.ts";

const LATEST_BASELINE = "husk-agent-v1.binpb";

const git = (...args: string[]) => {
  const r = spawnSync("git", args, { cwd: REPO, encoding: "utf8" });
  if (r.status !== 0) throw new HuskError(`git ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout.trim();
};

// husk-agent-v1.binpb, the image test/protocol checks against, is a link to the newest release's.
function pointLatest(file: string): void {
  const link = join(BASELINE_DIR, LATEST_BASELINE);
  const tmp = `${link}.tmp-${process.pid}`;
  symlinkSync(file, tmp);
  renameSync(tmp, link);
}

function cut(version: string, rev: string): Release {
  const commit = git("rev-parse", "--verify", `${rev}^{commit}`);
  const releases = loadReleases();
  const last = releases.at(-1)!;
  const repoint = last.version === version;
  if (!repoint && compareVersions(last.version, version) >= 0)
    throw new HuskError(`release ${version} is not newer than ${last.version}, the last in ${RELEASES_FILE}`);
  const draft: Release = {
    version,
    commit,
    persistFormat: "0.0", // replaced below by what the built binary says it writes
    protocolBaseline: `husk-agent-v1-${version}.binpb`,
    date: new Date().toISOString().slice(0, 10),
  };
  const bin = releaseBinary(draft, { log: console.log });
  const info = JSON.parse(spawnSync(bin, ["version", "--json"], { encoding: "utf8" }).stdout);
  if (info.version !== version) throw new HuskError(`${commit} builds husk ${info.version}, not ${version}: bump package.json first`);
  const release = { ...draft, persistFormat: String(info.persist.writes) };
  const frozen = imageAtCommit(commit, join(BASELINE_DIR, release.protocolBaseline));
  if (!frozen.ok) throw new HuskError(`buf build of the proto at ${commit}: ${frozen.output}`);
  pointLatest(release.protocolBaseline);
  const next = [...(repoint ? releases.slice(0, -1) : releases), release];
  const text = JSON.stringify({ releases: next }, null, 2) + "\n";
  parseReleases(text); // never write a file the test would refuse
  writeFileSync(RELEASES_FILE, text);
  if (!existsSync(join(REPO, "test", "fixtures", "persist", release.persistFormat)))
    console.log(`compat: add golden fixtures test/fixtures/persist/${release.persistFormat}/ (docs/releasing.md)`);
  return release;
}

const [version, flag, rev] = process.argv.slice(2);
if (!version || (flag !== undefined && (flag !== "--commit" || !rev))) {
  console.error("usage: bun compat/cut-release.ts <version> [--commit <rev>]");
  process.exit(2);
}
try {
  console.log(JSON.stringify(cut(version, rev ?? "HEAD"), null, 2));
  console.log(`compat: commit ${RELEASES_FILE.slice(REPO.length + 1)} and proto/baseline/; keep the old records as they are`);
} catch (e) {
  console.error(`cut-release: ${errorMessage(e)}`);
  process.exit(1);
}
