// Agent protocol: unary round trips (calls/s, p50/p99) of Health and stdout
// streaming throughput (MB/s), with the agent in its own process as in real
// use. Channels: the unix fast path (HTTP/1.1, lean Connect on Bun.serve) and
// one byte stream carrying HTTP/2 (the virtio-serial / hybrid-vsock path,
// here over a unix socket). Target: >= 5,000 unary calls/s on the unix path.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OutputStream, connectAgent, type AgentClient, type AgentTarget } from "../lib/protocol/index.ts";
import { serveAgent } from "../lib/protocol/server/index.ts";

const UNARY_CALLS = 5000;
const CONCURRENCY = 8;
const STREAM_MB = 256;
const CHUNK = 64 * 1024;

async function startAgent(kind: "unix" | "stream", socket: string) {
  const child = spawn(process.execPath, [import.meta.filename, "--agent", kind, socket], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`bench agent exited with ${code}`)));
  });
  return child;
}

const dial = (path: string) => () =>
  new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(path);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

async function unary(client: AgentClient) {
  for (let i = 0; i < 500; i++) await client.rpc.health({}); // warm-up
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < UNARY_CALLS; i++) {
    const t = performance.now();
    await client.rpc.health({});
    lat.push(performance.now() - t);
  }
  const seqRate = UNARY_CALLS / ((performance.now() - t0) / 1000);
  lat.sort((a, b) => a - b);
  const t1 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = 0; i < UNARY_CALLS / CONCURRENCY; i++) await client.rpc.health({});
    }),
  );
  const concRate = UNARY_CALLS / ((performance.now() - t1) / 1000);
  return { seqRate, concRate, p50: percentile(lat, 50), p99: percentile(lat, 99) };
}

async function streaming(client: AgentClient) {
  let bytes = 0;
  const t = performance.now();
  for await (const m of client.rpc.streamOutput({ containerId: "bench" })) bytes += m.data.byteLength;
  return bytes / 1e6 / ((performance.now() - t) / 1000);
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), "husk-bench-proto-"));
  try {
    for (const kind of ["unix", "stream"] as const) {
      const socket = join(dir, `${kind}.sock`);
      const agent = await startAgent(kind, socket);
      try {
        const target: AgentTarget = kind === "unix" ? { unix: socket } : dial(socket);
        const client = await connectAgent(target, { sandboxId: "bench" });
        const u = await unary(client);
        const mbps = await streaming(client);
        const label = kind === "unix" ? "unix socket, HTTP/1.1" : "byte stream, HTTP/2";
        console.log(
          `protocol ${label}: unary ${Math.round(u.seqRate)} calls/s sequential, ` +
            `${Math.round(u.concRate)} calls/s with ${CONCURRENCY} in flight, ` +
            `p50 ${(u.p50 * 1000).toFixed(0)} us, p99 ${(u.p99 * 1000).toFixed(0)} us; ` +
            `stdout stream ${mbps.toFixed(0)} MB/s` +
            (kind === "unix" ? ` (target >= 5000 calls/s: ${u.seqRate >= 5000 ? "met" : "MISSED"})` : ""),
        );
        client.close();
      } finally {
        agent.kill();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Child mode: `bun bench/protocol.ts --agent <unix|stream> <socket>`.
if (process.argv[2] === "--agent") {
  const chunk = new Uint8Array(CHUNK).fill(0x61);
  serveAgent(
    {
      health: () => ({ status: 1, uptimeSeconds: 0 }),
      writeStdin: (r) => ({ written: BigInt(r.data.byteLength) }),
      closeStdin: () => ({}),
      async *streamOutput() {
        for (let sent = 0; sent < STREAM_MB * 1024 * 1024; sent += CHUNK) yield { stream: OutputStream.STDOUT, data: chunk };
        yield { stream: OutputStream.STDOUT, eof: true };
      },
    },
    { unix: process.argv[4]!, http2: process.argv[3] === "stream" },
    { agentVersion: "bench", capabilities: ["health", "stdio"] },
  );
  console.log("ready");
} else {
  await main();
}
