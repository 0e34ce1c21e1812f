import { describe, expect, test } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cli } from "../helpers/cli.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";

// runc refuses what it does not understand; so does husk, before any work.
describe("command-line arguments are checked like runc's", () => {
  const bundle = makeBusyboxBundle(mkdtempSync(join(tmpdir(), "husk-args-")), { args: ["true"] });
  const cases: [string[], RegExp][] = [
    [["create", "--bundle", bundle, "--no-such-flag", "c1"], /create: unknown flag --no-such-flag$/],
    [["create", "--bundle", bundle, "c1", "--pid-file"], /create: flag needs an argument: --pid-file$/],
    [["create", "--bundle", bundle, "c1", "c2"], /create: takes 1 argument \(container id\), got 2: unexpected "c2"$/],
    [["create", "--bundel", bundle, "c1"], /create: unknown flag --bundel \(did you mean --bundle\?\)$/],
    [["run", "-d", "--bundle", bundle, "c1", "extra"], /run: takes 1 argument .* unexpected "extra"$/],
    [["delete", "--forse", "c1"], /did you mean --force\?/],
    [["delete", "--force=yes", "c1"], /flag --force takes no value other than true or false/],
    [["kill", "c1", "KILL", "more"], /kill: takes 2 arguments .* unexpected "more"$/],
    [["list", "--format", "yaml"], /list: flag --format must be one of table, json, not "yaml"$/],
    [["state", "c1", "c2"], /state: takes 1 argument/],
    [["gc", "now"], /gc: takes no arguments, got 1: unexpected "now"$/],
    [["--no-such-global", "state", "c1"], /unknown global flag --no-such-global/],
    [["exec", "--no-such-flag", "c1", "true"], /exec: unknown option --no-such-flag$/],
  ];

  test.each(cases)("husk %j", (args, message) => {
    const cli = new Cli();
    const r = cli.run(args);
    expect(r.status).not.toBe(0);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^husk: /);
    expect(lines[0]).toMatch(message);
    expect(cli.leftovers()).toEqual([]); // nothing was created
  });

  test("the flags podman and containerd pass are accepted", () => {
    const cli = new Cli();
    const pidFile = join(cli.root, "..", "pid");
    cli.ok(["--log", join(cli.root, "..", "log"), "--log-format", "json", "--systemd-cgroup", "create", "--bundle", bundle, "--pid-file", pidFile, "--no-pivot", "--no-new-keyring", "c1"], { stdioFile: cli.out });
    expect(cli.state("c1").status).toBe("created");
    cli.ok(["kill", "--all", "c1", "KILL"]);
    cli.ok(["delete", "--force", "c1"]);
    expect(cli.leftovers()).toEqual([]);
  });
});
