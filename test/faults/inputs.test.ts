import { describe, expect, test } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cli } from "../helpers/cli.ts";
import { busyboxSpec, makeBusyboxRootfs } from "../helpers/bundle.ts";
import { LIMITS, type Spec } from "../../lib/oci/index.ts";

const rootfs = makeBusyboxRootfs(join(mkdtempSync(join(tmpdir(), "husk-inputs-")), "rootfs"));

function bundleWith(change: (spec: Spec & Record<string, any>) => void): string {
  const dir = mkdtempSync(join(tmpdir(), "husk-inputs-"));
  const spec = busyboxSpec({ args: ["true"] }, rootfs) as Spec & Record<string, any>;
  change(spec);
  writeFileSync(join(dir, "config.json"), JSON.stringify(spec));
  return dir;
}

const huge = (n: number, c = "a") => c.repeat(n);
const many = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i));

// Oversized bundles are refused before any work: a one-line error that names
// the field, shows at most a short preview, and leaves nothing behind. The
// bound is "finishes", not a speed test.
describe("inputs are bounded before any work", () => {
  const cases: [string, (s: Spec & Record<string, any>) => void, RegExp][] = [
    ["a 3 MB cwd", (s) => (s.process!.cwd = `/${huge(3_000_000)}`), /process\.cwd: over the limit of 4096 bytes/],
    ["a 3 MB mount destination", (s) => s.mounts!.push({ destination: `/${huge(3_000_000)}`, type: "tmpfs", source: "tmpfs" }), /mounts\.\d+\.destination: over the limit/],
    ["100,000 env entries", (s) => (s.process!.env = many(100_000, (i) => `V${i}=x`)), /process\.env: 100000 entries, over the limit of 16384/],
    ["100,000 args", (s) => (s.process!.args = many(100_000, () => "x")), /process\.args: 100000 entries, over the limit/],
    ["one 1 MB env entry", (s) => s.process!.env!.push(`BIG=${huge(1_000_000)}`), /process\.env\.\d+: over the limit of 131072 bytes/],
    ["3 MB of env in total", (s) => (s.process!.env = many(30, () => huge(100_000))), /args and env take \d+ bytes together, over the limit of 2097152/],
    ["5,000 mounts", (s) => (s.mounts = many(5000, (i) => JSON.stringify({ destination: `/m${i}` })).map((m) => JSON.parse(m))), /mounts: 5000 entries, over the limit of 1024/],
    ["5,000 annotations", (s) => (s.annotations = Object.fromEntries(many(5000, (i) => `k${i}`).map((k) => [k, "v"]))), /annotations: 5000 entries, over the limit of 1024/],
    ["a 1 MB annotation key", (s) => (s.annotations = { [huge(1_000_000)]: "v" }), /annotations\..*over the limit of 1024 bytes/],
    ["a 100-byte hostname", (s) => (s.hostname = huge(100, "h")), /hostname: over the limit of 64 bytes/],
    ["a 5 MB config.json", (s) => (s.padding = huge(5 * 1024 * 1024)), /config\.json: \d+ bytes, over the limit of 4194304 for config\.json/],
  ];

  test.each(cases)("%s", (_what, change, message) => {
    const cli = new Cli();
    const bundle = bundleWith(change);
    const t0 = Date.now();
    const r = cli.run(["create", "--bundle", bundle, "big"]);
    expect(Date.now() - t0).toBeLessThan(10_000); // finishes (not a speed test)
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr.length).toBeLessThan(600);
    expect(r.stderr).toMatch(message);
    expect(cli.leftovers()).toEqual([]);
  });

  test("generous: 10,000 env entries and a 4000-byte annotation run", () => {
    const cli = new Cli();
    const bundle = bundleWith((s) => {
      s.process!.env = [...s.process!.env!, ...many(10_000, (i) => `V${i}=${i}`)];
      s.process!.args = ["sh", "-c", 'test "$V9999" = 9999'];
      s.annotations = { big: huge(4000) };
    });
    expect(cli.run(["run", "--bundle", bundle, "ok"], { stdioFile: cli.out }).status).toBe(0);
    expect(cli.leftovers()).toEqual([]);
  });

  test("exec is bounded the same way: flags and --process", () => {
    const cli = new Cli();
    const bundle = bundleWith((s) => (s.process!.args = ["sleep", "60"]));
    cli.ok(["create", "--bundle", bundle, "ex"], { stdioFile: cli.out });
    cli.ok(["start", "ex"]);
    const processFile = join(bundle, "process.json");
    writeFileSync(processFile, JSON.stringify({ args: ["true"], cwd: "/", user: { uid: 0, gid: 0 }, env: many(100_000, (i) => `V${i}=x`) }));
    for (const [args, message] of [
      [["exec", "--cwd", `/${huge(10_000)}`, "ex", "true"], /^husk: exec: cwd: over the limit of 4096 bytes: "\/aaa/],
      [["exec", "--process", processFile, "ex"], /^husk: exec --process .*: env: 100000 entries, over the limit of 16384$/],
    ] as const) {
      const r = cli.run([...args]);
      expect(r.status).not.toBe(0);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr.length).toBeLessThan(600);
      expect(r.stderr.trim()).toMatch(message);
    }
    cli.ok(["delete", "--force", "ex"]);
    expect(cli.leftovers()).toEqual([]);
  });

  test("the limits are documented", async () => {
    const doc = await Bun.file(join(import.meta.dirname, "..", "..", "docs", "limits.md")).text();
    for (const n of Object.values(LIMITS)) expect(doc).toContain(n.toLocaleString("en-US"));
  });
});
