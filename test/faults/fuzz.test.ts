import { describe, expect, test } from "vitest";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cli } from "../helpers/cli.ts";
import { busyboxSpec, makeBusyboxRootfs } from "../helpers/bundle.ts";
import { leakMark, noLeaks, settledLeaks } from "../helpers/leaks.ts";
import { HuskError } from "../../lib/core/index.ts";
import { loadBundle } from "../../lib/oci/index.ts";
import { openStore } from "../../lib/persist/index.ts";

// Mutated config.json and persist documents, from a fixed seed: each gives a
// clean error (a HuskError; one line on the CLI, never "internal error") or
// works, and leaves nothing behind. A few hundred per run; more with
// HUSK_FUZZ_RUNS=1000 (and another seed with HUSK_FUZZ_SEED).

const SEED = Number(process.env.HUSK_FUZZ_SEED ?? 14);
const RUNS = Number(process.env.HUSK_FUZZ_RUNS ?? 300);
const CLI_EVERY = 20;
const TIMEOUT_MS = 120_000 + RUNS * 500; // every 20th case also goes through the CLI, with a real container
const DEAD_PID = 5_000_000; // above any pid_max: never a live process

function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

class Mutator {
  constructor(private readonly rnd: () => number) {}
  int = (n: number) => Math.floor(this.rnd() * n);
  pick = <T>(xs: readonly T[]): T => xs[this.int(xs.length)]!;

  value(depth = 0): Json {
    const kinds = [
      () => null, () => true, () => -1, () => 0, () => 2 ** 53, () => 1e308, () => -0.5, () => "",
      () => "x".repeat(this.pick([1, 100, 5000, 200_000])), () => "\u0000\n\t\u202e\ud800é", () => "../../etc",
      () => [], () => ({}), () => (depth < 3 ? [this.value(depth + 1), this.value(depth + 1)] : 1),
      () => (depth < 3 ? { "x-fuzz": this.value(depth + 1) } : "deep"),
      () => Array.from({ length: this.pick([10, 3000, 40_000]) }, (_, i) => `E${i}=v`),
    ];
    return this.pick(kinds)();
  }

  // Paths to every value in the tree.
  private paths(v: Json, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
    out.push(at);
    if (Array.isArray(v)) v.slice(0, 50).forEach((x, i) => this.paths(x, [...at, i], out));
    else if (v && typeof v === "object") for (const k of Object.keys(v)) this.paths(v[k]!, [...at, k], out);
    return out;
  }

  structural(doc: Json, avoid: RegExp = /$^/): Json {
    const copy = structuredClone(doc);
    const candidates = this.paths(copy).filter((p) => p.length > 0 && !avoid.test(p.join(".")));
    const path = this.pick(candidates);
    const parent = path.slice(0, -1).reduce<any>((o, k) => o[k], copy);
    const key = path.at(-1)!;
    const op = this.int(5);
    if (op === 0) Array.isArray(parent) ? parent.splice(Number(key), 1) : delete parent[key];
    else if (op === 1 && Array.isArray(parent[key])) {
      const first = parent[key][0] ?? 1;
      const n = this.pick(typeof first === "object" && first !== null ? [2, 50, 500] : [2, 2000, 20_000]);
      parent[key] = Array.from({ length: n }, () => structuredClone(first));
    }
    else if (op === 2 && typeof parent[key] === "string") parent[key] = parent[key] + this.pick(["\n", "\u0000", " ".repeat(10_000), "é".repeat(3000)]);
    else parent[key] = this.value();
    return copy;
  }

  textual(text: string): string {
    const at = this.int(text.length);
    switch (this.int(4)) {
      case 0: return text.slice(0, at); // torn
      case 1: return text.slice(0, at) + String.fromCharCode(this.int(256)) + text.slice(at + 1);
      case 2: return text.slice(0, at) + "{".repeat(this.pick([1, 5000])) + text.slice(at);
      default: return text.replace(/"[a-zA-Z]+":/, `"${"k".repeat(this.pick([1, 3000]))}":`);
    }
  }

  mutate(doc: Json, avoid?: RegExp): string {
    if (this.int(4) === 0) return this.textual(JSON.stringify(doc, null, 2));
    let d = doc;
    for (let i = 0, n = 1 + this.int(3); i < n; i++) d = this.structural(d, avoid);
    return JSON.stringify(d);
  }
}

// A clean error: ours, in one bounded line.
function expectClean(e: unknown, label: string): void {
  expect(e, `${label}: ${e}`).toBeInstanceOf(HuskError);
  const msg = (e as Error).message;
  expect(msg.length, `${label}: ${msg.slice(0, 3000)}`).toBeLessThan(2500);
}

function expectCleanCli(r: { status: number; stderr: string }, label: string): void {
  if (r.status === 0) return;
  const why = `${label}: exit ${r.status}: ${r.stderr.slice(0, 3000)}`;
  const lines = r.stderr.trim().split("\n").filter((l) => !l.startsWith("husk: warning: "));
  expect(lines, why).toHaveLength(1);
  expect(lines[0], why).toMatch(/^husk: /);
  expect(lines[0], why).not.toMatch(/internal error/);
  expect(lines[0]!.length, why).toBeLessThan(2500);
}

const base = mkdtempSync(join(tmpdir(), "husk-fuzz-"));
const rootfs = makeBusyboxRootfs(join(base, "rootfs"));

describe(`fuzz (seed ${SEED}, ${RUNS} cases each)`, () => {
  test("mutated config.json: a clean error or a container, and nothing left", async () => {
    const m = new Mutator(mulberry32(SEED));
    const root = join(base, "cfg-root");
    const cli = new Cli({}, root);
    const spec = busyboxSpec({ args: ["true"] }, rootfs) as unknown as Json;
    (spec as any).process.env.push(leakMark(root));
    const ids: string[] = [];
    for (let i = 0; i < RUNS; i++) {
      const dir = join(base, `cfg${i}`);
      mkdirSync(dir);
      // The CLI cases keep the namespaces, mounts and root: a container without
      // a mount namespace would mount onto the host.
      const viaCli = i % CLI_EVERY === 0;
      writeFileSync(join(dir, "config.json"), m.mutate(spec, viaCli ? /^(linux|mounts|root)/ : undefined));
      try {
        loadBundle(dir);
      } catch (e) {
        expectClean(e, `config case ${i}`);
      }
      if (!viaCli) continue;
      const id = `fz${i}`;
      ids.push(id);
      // Its stdio in a file: the shim keeps it open, a pipe would never close.
      const out = join(base, `out${i}`);
      const created = cli.run(["create", "--bundle", dir, id], { stdioFile: out });
      expectCleanCli({ status: created.status, stderr: cli.output(out) }, `config case ${i}: create`);
      expectCleanCli(cli.run(["delete", "--force", id]), `config case ${i}: delete`);
    }
    expect(await settledLeaks(root, ids)).toEqual(noLeaks);
  }, TIMEOUT_MS);

  test("mutated persist documents: a clean error or a document, and nothing left", async () => {
    const m = new Mutator(mulberry32(SEED + 1));
    const fixtures = join(import.meta.dirname, "..", "fixtures", "persist");
    const docs = ["1.0", "1.1"].flatMap((v) =>
      readdirSync(join(fixtures, v)).filter((f) => f.endsWith(".json")).map((f) => JSON.parse(readFileSync(join(fixtures, v, f), "utf8")) as Json),
    );
    for (let i = 0; i < RUNS; i++) {
      const root = join(base, `doc-root${i}`);
      const original = docs[i % docs.length] as any;
      const id = original.id as string;
      // What a CLI case may act on: no live pid, no path outside this root.
      const viaCli = i % CLI_EVERY === 0;
      const doc = viaCli ? confined(original, join(root, id)) : original;
      mkdirSync(join(root, id), { recursive: true });
      const text = m.mutate(doc);
      writeFileSync(join(root, id, "persist.json"), text);
      const store = openStore({ root });
      try {
        const loaded = store.tryLoad(id);
        if (loaded) {
          store.save(loaded); // what loads is saved again, and loads again
          expect(store.tryLoad(id)?.id).toBe(id);
        }
      } catch (e) {
        expectClean(e, `document case ${i}`);
      }
      if (!viaCli) continue;
      const cli = new Cli({}, root);
      const container = original.containers?.[0]?.id ?? id;
      for (const args of [["state", container], ["list"], ["gc"], ["delete", "--force", container]])
        expectCleanCli(cli.run(args), `document case ${i}: ${args[0]}`);
      expect(await settledLeaks(root, [], 10_000, { files: false })).toEqual(noLeaks);
    }
  }, TIMEOUT_MS);
});

// Pids made dead and absolute paths moved under dir, at every level.
function confined(v: Json, dir: string): Json {
  if (typeof v === "string") return v.startsWith("/") ? join(dir, "x", v) : v;
  if (Array.isArray(v)) return v.map((x) => confined(x, dir));
  if (v && typeof v === "object")
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, /pid$/i.test(k) && typeof x === "number" ? DEAD_PID : confined(x, dir)]));
  return v;
}
