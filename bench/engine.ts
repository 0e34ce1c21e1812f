import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Engine, type OutputBuffer } from "../lib/agent/index.ts";
import { makeBusyboxBundle } from "../test/helpers/bundle.ts";

// Agent engine figures on this host (runc, busybox): container start-to-exit,
// exec round trip, output throughput through the buffered pipes, terminal echo.

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (n: number) => `${n.toFixed(1)} ms`;

async function drain(out: OutputBuffer): Promise<number> {
  let n = 0;
  for await (const c of out) n += c.length;
  return n;
}

const work = mkdtempSync("/tmp/husk-bench-engine-");
const engine = await Engine.open({ stateDir: join(work, "state") });
try {
  const once = makeBusyboxBundle(join(work, "true"), { args: ["true"] });
  const lifecycle: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t = performance.now();
    await engine.create(`run-${i}`, { bundle: once });
    await engine.start(`run-${i}`);
    await engine.wait(`run-${i}`);
    await engine.delete(`run-${i}`);
    lifecycle.push(performance.now() - t);
  }
  console.log(`engine: create+start+wait+delete of \`true\`: median ${ms(median(lifecycle))} (n=10)`);

  const idle = makeBusyboxBundle(join(work, "idle"), { args: ["sleep", "600"] });
  await engine.create("idle", { bundle: idle });
  await engine.start("idle");
  const execs: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t = performance.now();
    const x = await engine.exec("idle", { args: ["true"] });
    await engine.wait("idle", x);
    execs.push(performance.now() - t);
  }
  console.log(`engine: exec \`true\` and wait: median ${ms(median(execs))} (n=20)`);

  const bytes = 64 * 1024 * 1024;
  const t = performance.now();
  // busybox head writes 4-8 KiB at a time; dd with 64 KiB blocks measures us, not it.
  const flood = await engine.exec("idle", { args: ["busybox", "dd", "if=/dev/zero", "bs=65536", `count=${bytes / 65536}`] });
  const got = await drain(engine.output("idle", flood, "stdout"));
  const secs = (performance.now() - t) / 1000;
  console.log(`engine: stdout throughput: ${(got / secs / 1024 / 1024).toFixed(0)} MiB/s (${got} bytes)`);

  const tty = await engine.exec("idle", { args: ["cat"], terminal: true });
  const out = engine.output("idle", tty, "stdout");
  const echoes: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    await engine.writeStdin("idle", tty, new TextEncoder().encode(`x${i}\n`));
    let seen = "";
    while (!seen.includes(`x${i}\r\n`)) seen += new TextDecoder().decode((await out.read())!);
    echoes.push(performance.now() - t0);
  }
  console.log(`engine: terminal write-to-echo round trip: median ${ms(median(echoes))} (n=20)`);
  await engine.delete("idle", { force: true });
} finally {
  await engine.close();
  rmSync(work, { recursive: true, force: true });
}
