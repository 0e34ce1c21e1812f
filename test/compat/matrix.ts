import { errorMessage } from "../../lib/core/index.ts";

// What the cross-version test checks, one column each.
export const OPS = ["state", "list", "exec", "ps", "pause", "kill", "delete", "agent", "clean", "format", "minor", "refuse", "protocol"] as const;
export type Op = (typeof OPS)[number];

interface Row {
  expected: readonly Op[];
  results: Map<Op, string | undefined>; // undefined: passed; else why it failed
}

// The printed table of which operation passed in which direction. A cell a
// row expects but never ran (the scenario stopped early) counts as failed.
export class Matrix {
  private readonly rows = new Map<string, Row>();

  row(name: string, expected: readonly Op[]): void {
    if (!this.rows.has(name)) this.rows.set(name, { expected, results: new Map() });
  }

  // Runs one check for a cell in one or more rows; a failure is recorded, not
  // thrown, so the rest of the row still runs and the matrix shows it all.
  async cell(rows: string | string[], op: Op, fn: () => unknown): Promise<void> {
    let error: string | undefined;
    try {
      await fn();
    } catch (e) {
      error = errorMessage(e);
    }
    for (const row of [rows].flat()) this.get(row).results.set(op, error);
  }

  // Throws, listing the failed cells of the row (of `ops` only, if given).
  assertRow(row: string, ops: readonly Op[] = OPS): void {
    const failed = [...this.get(row).results].filter(([op, e]) => e !== undefined && ops.includes(op));
    if (failed.length) throw new Error(`${row}:\n  ${failed.map(([op, e]) => `${op}: ${e}`).join("\n  ")}`);
  }

  failures(): string[] {
    return [...this.rows].flatMap(([name, r]) => r.expected.filter((op) => !r.results.has(op) || r.results.get(op) !== undefined).map((op) => `${name} ${op}`));
  }

  render(): string {
    const width = Math.max(...[...this.rows.keys()].map((n) => n.length));
    const head = `${"".padEnd(width)}  ${OPS.join(" ")}`;
    const lines = [...this.rows].map(([name, r]) => {
      const cells = OPS.map((op) => {
        const ran = r.results.has(op) && r.results.get(op) === undefined;
        const mark = !r.expected.includes(op) ? "·" : ran ? "✓" : "✗";
        return mark.padStart(Math.ceil(op.length / 2)).padEnd(op.length);
      });
      return `${name.padEnd(width)}  ${cells.join(" ")}`;
    });
    return ["cross-version matrix (✓ passed, ✗ failed or not reached, · does not apply)", head, ...lines].join("\n");
  }

  private get(name: string): Row {
    const r = this.rows.get(name);
    if (!r) throw new Error(`no matrix row ${name}`);
    return r;
  }
}
