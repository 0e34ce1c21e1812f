import * as v from "valibot";

const MAX_ISSUES = 5;
const MAX_ISSUE_CHARS = 300;

// A value as an error message shows it: quoted, at most `max` characters.
export function preview(value: unknown, max = 100): string {
  const s = typeof value === "string" ? value : String(value);
  return s.length > max ? `${JSON.stringify(s.slice(0, max))}... (${Buffer.byteLength(s)} bytes)` : JSON.stringify(s);
}

// "process.args: Invalid type: Expected Array but received undefined; ..."
// At most a few issues, each cut short: a huge input never makes a huge error.
export function describeIssues(issues: readonly v.BaseIssue<unknown>[]): string {
  const shown = issues.slice(0, MAX_ISSUES).map((i) => {
    const dotted = v.getDotPath(i);
    const path = dotted && dotted.length > 200 ? `${dotted.slice(0, 200)}...` : dotted;
    const msg = i.message.length > MAX_ISSUE_CHARS ? `${i.message.slice(0, MAX_ISSUE_CHARS)}...` : i.message;
    return path ? `${path}: ${msg}` : msg;
  });
  const more = issues.length - shown.length;
  return shown.join("; ") + (more > 0 ? `; and ${more} more` : "");
}
