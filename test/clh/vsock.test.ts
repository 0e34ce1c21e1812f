import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { afterAll, afterEach, describe, expect, test } from "vitest";
import { HuskError } from "../../lib/core/index.ts";
import { dialHybridVsock } from "../../lib/hypervisor/clh/index.ts";

const dir = mkdtempSync(join(tmpdir(), "husk-vsock-"));
const servers: Server[] = [];
let n = 0;

// A peer on a unix socket that reads the CONNECT line and then does `reply`.
async function peer(reply: (conn: Socket, connectLine: string) => void): Promise<string> {
  const path = join(dir, `v${n++}.sock`);
  const server = createServer((conn) => {
    let buf = "";
    conn.on("error", () => {});
    conn.on("data", function first(d) {
      buf += d.toString();
      if (!buf.includes("\n")) return;
      conn.removeListener("data", first);
      reply(conn, buf.slice(0, buf.indexOf("\n")));
    });
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(path, r));
  return path;
}

const readN = (s: Duplex, bytes: number): Promise<string> =>
  new Promise((resolve, reject) => {
    let got = "";
    s.on("data", (d) => {
      got += d.toString();
      if (got.length >= bytes) resolve(got);
    });
    s.on("error", reject);
  });

afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("hybrid vsock dialer", () => {
  test("sends CONNECT <port> and keeps the bytes that came with the OK line", async () => {
    let seen = "";
    const path = await peer((conn, line) => {
      seen = line;
      conn.write("OK 1073741824\nhello from the guest");
      conn.on("data", (d) => conn.write(d)); // then an echo
    });
    const s = await dialHybridVsock(path, 1024, 2000);
    try {
      expect(seen).toBe("CONNECT 1024");
      expect(await readN(s, "hello from the guest".length)).toBe("hello from the guest");
      const echoed = readN(s, 4);
      s.write("ping");
      expect(await echoed).toBe("ping");
    } finally {
      s.destroy();
    }
  });

  test("an OK line that arrives in pieces is still understood", async () => {
    const path = await peer((conn) => {
      conn.write("O");
      setTimeout(() => conn.write("K 52\nda"), 20);
      setTimeout(() => conn.write("ta"), 40);
    });
    const s = await dialHybridVsock(path, 5000, 2000);
    try {
      expect(await readN(s, 4)).toBe("data");
    } finally {
      s.destroy();
    }
  });

  test("a wrong answer is an error that quotes it", async () => {
    const path = await peer((conn) => conn.write("ERR no listener\n"));
    const err = await dialHybridVsock(path, 1024, 2000).catch((e) => e);
    expect(err).toBeInstanceOf(HuskError);
    expect(err.message).toContain(`port 1024: expected "OK <port>", got "ERR no listener"`);
  });

  test("OK without a port number is refused", async () => {
    const path = await peer((conn) => conn.write("OK\n"));
    await expect(dialHybridVsock(path, 1024, 2000)).rejects.toThrow(/expected "OK <port>", got "OK"/);
  });

  test("a peer that never answers times out with a clear error", async () => {
    const path = await peer(() => {});
    const started = Date.now();
    const err = await dialHybridVsock(path, 1024, 300).catch((e) => e);
    expect(err).toBeInstanceOf(HuskError);
    expect(err.message).toMatch(/port 1024: no answer to CONNECT within 300 ms/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test("a peer that closes without answering says so", async () => {
    const path = await peer((conn) => conn.end());
    await expect(dialHybridVsock(path, 1024, 2000)).rejects.toThrow(/connection closed without an answer/);
  });

  test("a missing socket names the path", async () => {
    const path = join(dir, "absent.sock");
    await expect(dialHybridVsock(path, 1024, 2000)).rejects.toThrow(`hybrid vsock ${path} port 1024: cannot connect`);
  });

  test("an endless first line is cut off", async () => {
    const path = await peer((conn) => conn.write("x".repeat(500)));
    await expect(dialHybridVsock(path, 1024, 2000)).rejects.toThrow(/answer without a line end/);
  });
});
