import { afterAll, describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { DOC_FILE } from "../../lib/persist/index.ts";

// `husk update` with runc's flags (local driver: the host's runc applies them;
// test/qemu/limits.test.ts checks them inside a VM).

describe("husk update (local driver)", () => {
  const cli = new Cli();
  afterAll(async () => {
    cli.run(["delete", "--force", "up1"]);
    await until(() => processesUsing(cli.root).length === 0, 15_000, "shim and agent to exit");
  });

  test("runc's flags and -r reach the container's cgroup; mistakes and an agent without 'update' are refused plainly", async () => {
    const b = makeBusyboxBundle(join(mkdtempSync(join(tmpdir(), "husk-update-")), "bundle"), { args: ["sleep", "600"] });
    cli.ok(["create", "--bundle", b, "up1"], { stdioFile: cli.out });
    cli.ok(["start", "up1"]);
    // The local sandbox is the host: the container's cgroup is the host's.
    const pid = Number(cli.ok(["ps", "up1"]).trim().split("\n")[1]!.split(/ +/)[1]);
    const cgroupFile = (controller: string, file: string) => {
      const line = readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n").find((l) => l.split(":")[1]!.split(",").includes(controller));
      return readFileSync(`/sys/fs/cgroup/${controller}${line!.split(":")[2]}/${file}`, "utf8").trim();
    };
    cli.ok(["update", "--memory", "48m", "--pids-limit", "30", "up1"]);
    expect(cgroupFile("memory", "memory.limit_in_bytes")).toBe(String(48 * 1024 * 1024));
    expect(cgroupFile("pids", "pids.max")).toBe("30");
    cli.ok(["update", "-r", "-", "up1"], { input: JSON.stringify({ pids: { limit: 40 } }) });
    expect(cgroupFile("pids", "pids.max")).toBe("40");

    const refused = (args: string[], message: RegExp, input?: string) => {
      const r = cli.run(args, { input });
      expect(r.status).not.toBe(0);
      expect(r.stderr.trim()).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    };
    refused(["update", "up1"], /no resources given/);
    refused(["update", "--memory", "lots", "up1"], /update --memory: "lots" is not a size/);
    refused(["update", "-r", "-", "up1"], /update: resources must be a JSON object/, "[1]");
    // A resources file is bounded as config.json is: refused as it passes 4 MiB, never buffered whole.
    refused(["update", "-r", "-", "up1"], /^husk: update --resources -: over the limit of 4194304 bytes$/, `{"x":"${"a".repeat(5 * 1024 * 1024)}"}`);
    refused(["update", "-r", "/dev/zero", "up1"], /^husk: update --resources \/dev\/zero: over the limit of 4194304 bytes$/);

    // An agent that predates the call (its negotiated set, as persisted, lacks it).
    const docFile = join(cli.root, "up1", DOC_FILE);
    const doc = JSON.parse(readFileSync(docFile, "utf8"));
    doc.agent.capabilities = doc.agent.capabilities.filter((c: string) => c !== "update");
    writeFileSync(docFile, JSON.stringify(doc));
    refused(["update", "--memory", "64m", "up1"], /agent \S+ in sandbox up1 lacks capability 'update'; recreate the sandbox to use it/);
  });
});
