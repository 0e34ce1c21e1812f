import { afterAll, describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cli } from "../helpers/cli.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { ErrorCode, HuskError, errorMessage, fromSystemError } from "../../lib/core/index.ts";
import { serveProxy } from "../../lib/protocol/proxy.ts";
import { connectAgent } from "../../lib/protocol/index.ts";

const sysError = (code: string, syscall: string, path: string) =>
  Object.assign(new Error(`${code}: raw text, ${syscall} '${path}'`), { code, syscall, path });

// Every CLI error is one line on stderr (the same message in --log, text or
// JSON), never "internal error" with an errno, never a bare transport status.
function expectOneLine(r: { status: number; stderr: string }, message: RegExp): string {
  expect(r.status).not.toBe(0);
  const lines = r.stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^husk: /);
  // Paths are dropped first: a mkdtemp suffix such as "ECYXZW" looks like an errno.
  const words = lines[0]!.replace(/\/\S*/g, "/…");
  expect(words).not.toMatch(/internal error|\bE[A-Z]{3,}\b|HTTP \d{3}|typo in the url/);
  expect(lines[0]).toMatch(message);
  return lines[0]!.slice("husk: ".length);
}

const lastJsonLog = (file: string) => JSON.parse(readFileSync(file, "utf8").trim().split("\n").at(-1)!);

describe("system errors are said in words, naming the path", () => {
  test.each([
    ["ENOSPC", "write", /^cannot write \/r\/x: no space left on device$/, ErrorCode.ResourceExhausted],
    ["EACCES", "open", /^cannot open \/r\/x: permission denied$/, ErrorCode.PermissionDenied],
    ["EROFS", "mkdir", /^cannot create directory \/r\/x: read-only file system$/, ErrorCode.PermissionDenied],
    ["ENOENT", "rename", /^cannot rename \/r\/x: no such file or directory$/, ErrorCode.NotFound],
  ])("%s", (code, syscall, message, kind) => {
    const e = fromSystemError(sysError(code, syscall, "/r/x"));
    expect(e).toBeInstanceOf(HuskError);
    expect((e as HuskError).message).toMatch(message);
    expect((e as HuskError).code).toBe(kind);
    expect(errorMessage(sysError(code, syscall, "/r/x"))).toMatch(message);
  });
});

describe("CLI errors", () => {
  const mounted: string[] = [];
  afterAll(() => mounted.forEach((m) => spawnSync("umount", ["-l", m])));

  test("a read-only --root: one line naming the path, the same message in the JSON log", () => {
    const dir = mkdtempSync(join(tmpdir(), "husk-ro-"));
    const root = join(dir, "ro root");
    mkdirSync(root);
    expect(spawnSync("mount", ["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", root]).status).toBe(0);
    mounted.push(root);
    const cli = new Cli();
    const log = join(dir, "log.json");
    const bundle = makeBusyboxBundle(join(dir, "bundle"), { args: ["true"] });
    const r = cli.run(["--root", root, "--log", log, "--log-format", "json", "create", "--bundle", bundle, "c1"]);
    const msg = expectOneLine(r, /read-only file system/);
    expect(msg).toContain(root);
    expect(lastJsonLog(log)).toMatchObject({ level: "error", msg });
  });

  test("an agent that died: the error names the sandbox and its socket", () => {
    const cli = new Cli();
    const log = join(cli.root, "..", "log.json");
    const bundle = makeBusyboxBundle(join(cli.root, "..", "bundle"), { args: ["sleep", "60"] });
    cli.ok(["create", "--bundle", bundle, "c1"], { stdioFile: cli.out });
    const doc = JSON.parse(cli.ok(["inspect", "c1"]));
    process.kill(doc.vm.agent.pid, "SIGKILL");
    const r = cli.run(["--log", log, "--log-format", "json", "ps", "c1"]);
    const msg = expectOneLine(r, /^husk: cannot reach the agent of sandbox c1 at \S+agent\.sock: /);
    expect(lastJsonLog(log).msg).toBe(msg);
    cli.ok(["delete", "--force", "c1"]);
    expect(cli.leftovers()).toEqual([]);
  });

  test("a proxy that cannot reach its VM: the client names the sandbox and the proxy, not HTTP 502", async () => {
    const sock = join(mkdtempSync(join(tmpdir(), "husk-proxy-")), "proxy.sock");
    const proxy = serveProxy(sock, async () => {
      throw new Error("virtio-serial port closed");
    });
    try {
      const what = `the agent of sandbox sb1 through its proxy at ${sock}`;
      const err = await connectAgent({ unix: sock }, { sandboxId: "sb1", what }).then(() => undefined, (e) => e as HuskError);
      expect(err).toBeInstanceOf(HuskError);
      expect(err!.message).toContain(`cannot reach ${what}: `);
      expect(err!.message).toContain("virtio-serial port closed");
      expect(err!.message).not.toMatch(/HTTP 502/);
      expect(err!.code).toBe(ErrorCode.Unavailable);
    } finally {
      await proxy.close();
    }
    // And once the proxy itself is gone.
    const gone = await connectAgent({ unix: sock }, { sandboxId: "sb1", what: "the agent of sandbox sb1 through its proxy" }).then(() => undefined, (e) => e as HuskError);
    expect(gone!.message).toMatch(/^cannot handshake with the agent of sandbox sb1: cannot reach the agent of sandbox sb1 through its proxy: its socket does not exist/);
  });
});
