import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { serveRelay, type RelayServer, type RelaySession } from "../../lib/relay/index.ts";
import { Frame, FrameReader, encodeFrame } from "../../lib/relay/frames.ts";
import { builtBinary } from "../helpers/husk.ts";

// A container process's stand-in (`husk shim --relay`, the built binary)
// against a relay served here as a sandbox's proxy serves it: what the
// container's caller (conmon, containerd's shim) sees of it is its stdio,
// the signals it takes and the status it exits with.

const SANDBOX = "pod";
let server: RelayServer | undefined;
afterEach(() => server?.close());

function startShim(dir: string, extra: string[] = []) {
  const args = ["--root", join(dir, "root"), "shim", "--sandbox", SANDBOX, "--container", "c1", "--relay", join(dir, "relay.sock"), ...extra];
  const child = spawn(builtBinary(), args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, HUSK_CONFIG: "/dev/null" } });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on("data", (b: Buffer) => out.push(b));
  child.stderr.on("data", (b: Buffer) => err.push(b));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return { child, exited, stdout: () => Buffer.concat(out), stderr: () => Buffer.concat(err).toString() };
}

async function relay(onSession: (s: RelaySession) => void): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "husk-relay-"));
  server = await serveRelay(join(dir, "relay.sock"), SANDBOX, onSession);
  return dir;
}

describe("a shim relayed through its sandbox's proxy", () => {
  it("passes 4 MiB of stdin in full, output on the right stream in order, and exits with the status the proxy sends", async () => {
    const input = randomBytes(4 << 20);
    let hello: RelaySession["hello"] | undefined;
    const dir = await relay(async (s) => {
      hello = s.hello;
      const hash = createHash("sha256");
      let n = 0;
      for await (const chunk of s.io.input) {
        hash.update(chunk);
        n += chunk.length;
        await s.io.write("stdout", chunk);
      }
      await s.io.write("stderr", new TextEncoder().encode(`got ${n} bytes ${hash.digest("hex")}\n`));
      s.exit(42);
    });
    const shim = startShim(dir);
    shim.child.stdin.end(input);
    expect(await shim.exited).toBe(42);
    expect(hello).toEqual({ v: 1, sandboxId: SANDBOX, containerId: "c1", execId: undefined, tty: false });
    expect(shim.stdout().equals(input)).toBe(true);
    expect(shim.stderr()).toBe(`got ${input.length} bytes ${createHash("sha256").update(input).digest("hex")}\n`);
  }, 60_000);

  it("passes the signals it receives on to the proxy, and exits as the process it stands for did", async () => {
    const seen: number[] = [];
    const dir = await relay((s) => {
      s.io.onSignal((sig) => {
        seen.push(sig);
        if (sig === 15) s.exit(128 + 15);
      });
      void s.io.write("stdout", new TextEncoder().encode("ready\n"));
    });
    const shim = startShim(dir);
    while (!shim.stdout().includes("ready")) await Bun.sleep(10);
    shim.child.kill("SIGUSR1");
    await Bun.sleep(200);
    shim.child.kill("SIGTERM");
    expect(await shim.exited).toBe(143);
    expect(seen).toEqual([10, 15]);
  }, 60_000);

  it("relays by itself when the proxy refuses it, and says so in its log", async () => {
    const dir = await relay((s) => s.refuse("not today"));
    const shim = startShim(dir);
    shim.child.stdin.end();
    // Relaying by itself, it finds no such sandbox here: the create that
    // would have recorded it failed, and it exits as a failed create's shim.
    expect(await shim.exited).toBe(255);
    expect(readFileSync(join(dir, "shim.log"), "utf8")).toContain("the proxy refused the relay: not today");
  }, 60_000);
});

describe("the proxy's relay socket", () => {
  const hello = async (dir: string, body: object): Promise<string> => {
    const sock = createConnection(join(dir, "relay.sock"));
    const frames = new FrameReader();
    sock.write(encodeFrame(Frame.Hello, body));
    return new Promise((resolve) => {
      sock.on("data", (b: Buffer) =>
        frames.push(b, (type, payload) => resolve(`${type === Frame.Refused ? "refused" : type}: ${new TextDecoder().decode(payload)}`)),
      );
      sock.on("close", () => resolve("closed"));
    });
  };

  it("refuses a stand-in of another sandbox, a bad id or another relay version, naming what is wrong", async () => {
    let sessions = 0;
    const dir = await relay(() => sessions++);
    const base = { v: 1, sandboxId: SANDBOX, containerId: "c1", tty: false };
    expect(await hello(dir, { ...base, sandboxId: "other" })).toBe('refused: {"message":"this proxy serves sandbox pod, not other"}');
    expect(await hello(dir, { ...base, containerId: "../etc" })).toMatch(/^refused: .*\.\./);
    expect(await hello(dir, { ...base, v: 2 })).toBe('refused: {"message":"relay version 2 is not 1"}');
    expect(sessions).toBe(0);
    expect(await hello(dir, base)).toBe(`${Frame.Ready}: {"v":1}`);
    expect(sessions).toBe(1);
  });

  it("ends a relay whose frame it cannot take, saying why", async () => {
    const dir = await relay(() => {});
    const sock = createConnection(join(dir, "relay.sock"));
    const seen: string[] = [];
    const frames = new FrameReader();
    sock.on("data", (b: Buffer) => frames.push(b, (type, payload) => seen.push(`${type} ${new TextDecoder().decode(payload)}`)));
    sock.write(encodeFrame(Frame.Hello, { v: 1, sandboxId: SANDBOX, containerId: "c1", tty: true }));
    sock.write(encodeFrame(Frame.Resize, { rows: 0, cols: 80 }));
    await new Promise((r) => sock.on("close", r));
    expect(seen).toEqual([`${Frame.Ready} {"v":1}`, `${Frame.Refused} {"message":"terminal size 0x80 is out of range"}`]);
  });
});
