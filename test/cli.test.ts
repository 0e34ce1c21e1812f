import { describe, expect, test } from "vitest";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { builtBinary, husk } from "./helpers/husk.ts";
import pkg from "../package.json" with { type: "json" };

const BARE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

// Inside a private mount namespace, any node or bun on that PATH is masked with
// /dev/null, so the binary must stand on its own.
const BARE_SCRIPT = `
for d in $(echo "$BARE_PATH" | tr : ' '); do
  for t in node nodejs bun; do [ -e "$d/$t" ] && mount --bind /dev/null "$d/$t"; done
done
if env -i PATH="$BARE_PATH" sh -c 'node --version || bun --version' >/dev/null 2>&1; then echo "node or bun still runs" >&2; exit 99; fi
exec env -i PATH="$BARE_PATH" ./husk --version`;

describe("husk binary on a bare host", () => {
  test("runs with no node, no bun and no node_modules", () => {
    const dir = mkdtempSync(join(tmpdir(), "husk-bare-"));
    copyFileSync(builtBinary(), join(dir, "husk"));
    chmodSync(join(dir, "husk"), 0o755);
    const r = spawnSync("unshare", ["-m", "sh", "-c", BARE_SCRIPT], {
      cwd: dir,
      encoding: "utf8",
      env: { BARE_PATH, PATH: process.env.PATH },
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines[0]).toBe(`husk version ${pkg.version}`);
    expect(lines[1]).toMatch(/^commit: [0-9a-f]{7,}(-dirty)?$/);
    expect(lines[2]).toMatch(/^spec: \d+\.\d+\.\d+$/);
  });
});

describe("version", () => {
  test("--json reports version, commit and spec", () => {
    const r = husk(["version", "--json"]);
    expect(r.status).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.version).toBe(pkg.version);
    expect(typeof info.commit).toBe("string");
    expect(info.ociSpec).toMatch(/^1\.\d+\.\d+$/);
  });
});

describe("help", () => {
  test("a command's --help prints its usage and exits 0", () => {
    const r = husk(["kill", "--help"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("USAGE");
    expect(r.stdout).toContain("--all");
  });
});

describe("errors", () => {
  test("unknown command exits non-zero without a stack trace", () => {
    const r = husk(["frobnicate"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('unknown command "frobnicate"');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  test("a global option without its value is named", () => {
    const r = husk(["--root"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("--root needs a value");
  });

  test("bad config file names the file, and the error reaches --log as JSON", () => {
    const dir = mkdtempSync(join(tmpdir(), "husk-cfg-"));
    const cfg = join(dir, "config.toml");
    writeFileSync(cfg, 'hypervisor = "vmware"\n');
    const logFile = join(dir, "log.json");
    const r = husk(["--log", logFile, "--log-format", "json", "--config", cfg, "version"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(cfg);
    expect(r.stderr).toContain("hypervisor");
    const last = JSON.parse(readFileSync(logFile, "utf8").trim().split("\n").at(-1)!);
    expect(last.level).toBe("error");
    expect(last.msg).toContain(cfg);
    expect(Number.isNaN(Date.parse(last.time))).toBe(false);
  });
});
