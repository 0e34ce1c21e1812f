import * as v from "valibot";
import { describeIssues, preview } from "../core/index.ts";
import { PersistError, type Origin } from "./errors.ts";
import { typedFromLegacy, withLegacy } from "./legacy.ts";
import { SandboxV1 } from "./v1.ts";
import { SandboxV1_1 } from "./v1_1.ts";
import { SandboxV1_2 } from "./v1_2.ts";

// One entry per format version, oldest first. `up` turns a document of the
// previous entry (already validated) into this one; it must be pure: no I/O,
// no clock, no mutation of its input.
export interface FormatStep {
  version: string; // "major.minor"
  schema: v.GenericSchema<unknown, Record<string, unknown>>;
  up?: (previous: Record<string, unknown>) => Record<string, unknown>;
}

interface Version {
  major: number;
  minor: number;
}

function parseVersion(s: string): Version | undefined {
  const m = /^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$/.exec(s);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

export class FormatChain<Doc extends Record<string, unknown>> {
  private readonly parsed: Version[];

  constructor(
    readonly steps: readonly FormatStep[],
    // Applied to every document before it is written: sections an older
    // reader of the same major still needs, derived from the current ones.
    readonly prepareWrite: (doc: Doc) => Doc = (d) => d,
  ) {
    if (steps.length === 0) throw new Error("a format chain needs at least one version");
    this.parsed = [];
    for (const [i, s] of steps.entries()) {
      const ver = parseVersion(s.version);
      if (!ver) throw new Error(`bad format version ${s.version}`);
      if (i > 0 && !s.up) throw new Error(`format ${s.version} has no migration from ${steps[i - 1]!.version}`);
      const prev = this.parsed[i - 1];
      if (prev && compare(prev, ver) >= 0) throw new Error(`format versions out of order at ${s.version}`);
      this.parsed.push(ver);
    }
  }

  get current(): string {
    return this.steps.at(-1)!.version;
  }

  // Every minor of each major we know, e.g. ">=1.0 <2.0".
  get readRange(): string {
    const first = this.steps[0]!.version;
    return `>=${first} <${this.parsed.at(-1)!.major + 1}.0`;
  }

  // Raw JSON value -> current document, or a PersistError naming the origin.
  decode(raw: unknown, origin: Origin): Doc {
    if (!isRecord(raw)) throw invalid(origin, `the document is ${describeType(raw)}, not a JSON object`);
    const found = raw.formatVersion;
    if (found === undefined) throw invalid(origin, "formatVersion is missing");
    if (typeof found !== "string") throw invalid(origin, `formatVersion is ${describeType(found)}, not a string`);
    const start = this.startFor(found, origin);
    // A newer minor of a known major reads as the newest minor we know: minors are additive.
    let doc: Record<string, unknown> = { ...raw, formatVersion: this.steps[start]!.version };
    for (let i = start; i < this.steps.length; i++) {
      const step = this.steps[i]!;
      if (i > start) doc = { ...step.up!(doc), formatVersion: step.version };
      const result = v.safeParse(step.schema, doc);
      if (!result.success) {
        const as = step.version === found ? "" : ` (read as format ${step.version})`;
        throw invalid(origin, `does not match format ${found}${as}: ${describeIssues(result.issues)}`);
      }
      doc = result.output;
    }
    return doc as Doc;
  }

  // A document about to be written, checked against the current schema.
  check(doc: Record<string, unknown>, origin: Origin): Doc {
    const result = v.safeParse(this.steps.at(-1)!.schema, doc);
    if (!result.success)
      throw invalid(origin, `does not match format ${this.current}: ${describeIssues(result.issues)}`);
    return result.output as Doc;
  }

  private startFor(found: string, origin: Origin): number {
    const ver = parseVersion(found);
    if (!ver) throw invalid(origin, `formatVersion ${preview(found)} is not "major.minor"`);
    const newest = this.parsed.at(-1)!;
    if (ver.major > newest.major)
      throw new PersistError(
        "newer-format",
        `${origin.where} (sandbox ${origin.sandboxId}) has persist format ${found}, which is newer than ` +
          `this husk reads (${this.readRange}); nothing was changed. Upgrade husk to a release that reads ` +
          `format ${ver.major}.x to manage this sandbox.`,
        origin.sandboxId,
        origin.path,
      );
    let best = -1;
    this.parsed.forEach((p, i) => {
      if (p.major === ver.major && p.minor <= ver.minor) best = i;
    });
    if (best < 0)
      throw new PersistError(
        "older-format",
        `${origin.where} (sandbox ${origin.sandboxId}) has persist format ${found}, which this husk no ` +
          `longer reads (${this.readRange}); nothing was changed. Use an older husk release to stop ` +
          `and delete this sandbox.`,
        origin.sandboxId,
        origin.path,
      );
    return best;
  }
}

const compare = (a: Version, b: Version) => a.major - b.major || a.minor - b.minor;

export const isRecord = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

const describeType = (x: unknown) =>
  x === null ? "null" : Array.isArray(x) ? "an array" : `a ${typeof x}`;

const invalid = (origin: Origin, detail: string) =>
  new PersistError("invalid", `${origin.where} (sandbox ${origin.sandboxId}): ${detail}`, origin.sandboxId, origin.path);

// The chain this release reads; its last entry is what it writes.
export const FORMATS = new FormatChain<SandboxDoc>(
  [
    { version: "1.0", schema: SandboxV1 },
    { version: "1.1", schema: SandboxV1_1, up: typedFromLegacy as FormatStep["up"] },
    { version: "1.2", schema: SandboxV1_2, up: (d) => d }, // only adds optional sections
  ],
  withLegacy as (d: SandboxDoc) => SandboxDoc,
);

export type SandboxDoc = v.InferOutput<typeof SandboxV1_2>;
