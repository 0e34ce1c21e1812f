import { appendFileSync } from "node:fs";

export type LogFormat = "text" | "json";
type Level = "debug" | "info" | "warn" | "error";

interface LogTarget {
  path?: string;
  format: LogFormat;
  debug: boolean;
}

let target: LogTarget = { format: "text", debug: false };

export function configureLog(next: LogTarget): void {
  target = next;
}

export const debugEnabled = (): boolean => target.debug;

// Callers (containerd's shim, conmon) read the `msg` of the last JSON error line
// of --log, so every line is one complete JSON object written in one append.
function write(level: Level, msg: string): void {
  if (level === "debug" && !target.debug) return;
  if (!target.path) return;
  const time = new Date().toISOString();
  const line =
    target.format === "json"
      ? JSON.stringify({ level, msg, time }) + "\n"
      : `time="${time}" level=${level} msg=${JSON.stringify(msg)}\n`;
  try {
    appendFileSync(target.path, line);
  } catch {
    // A log we cannot write must not hide the error being reported.
  }
}

export const log = {
  debug: (msg: string) => write("debug", msg),
  info: (msg: string) => write("info", msg),
  warn: (msg: string) => write("warn", msg),
  error: (msg: string) => write("error", msg),
  // Something the user of a command should know although it succeeded:
  // one line on stderr as well as in --log.
  notice: (msg: string) => {
    process.stderr.write(`husk: warning: ${msg}\n`);
    write("warn", msg);
  },
};
