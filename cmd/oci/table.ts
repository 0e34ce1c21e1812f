// runc's tables: Go's text/tabwriter as runc sets it up (minwidth 12,
// padding 3, spaces). Every column but the last is padded to the widest of
// its cells (in characters) plus 3, at least 12; the last is printed as it is.
export function formatTable(rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const width = (s: string) => [...s].length;
  const widths: number[] = [];
  for (const r of cells) r.slice(0, -1).forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 12, width(c) + 3)));
  const pad = (c: string, i: number, last: boolean) => (last ? c : c + " ".repeat(widths[i]! - width(c)));
  return cells.map((r) => r.map((c, i) => pad(c, i, i === r.length - 1)).join("")).join("\n") + "\n";
}

// Go's time.RFC3339Nano, as runc prints times: no trailing zeros in the fraction.
export const rfc3339Nano = (iso: string): string => iso.replace(/\.(\d*?)0*Z$/, (_, f: string) => (f ? `.${f}Z` : "Z"));
