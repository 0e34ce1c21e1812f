import { defineCommand } from "citty";
import { HuskError } from "../../lib/core/index.ts";
import { execInContainer, type ExecOptions } from "../../lib/sandbox/exec.ts";
import { context } from "./context.ts";

// Flags end at the container id; everything after it is the command, so
// `husk exec id sh -c 'exit 3'` never reads `-c` as a flag of ours.
const VALUE_FLAGS: Record<string, keyof ParsedExec | "ignore"> = {
  "--process": "processFile", "-p": "processFile",
  "--env": "env", "-e": "env",
  "--cwd": "cwd",
  "--user": "user", "-u": "user",
  "--pid-file": "pidFile",
  "--console-socket": "consoleSocket",
  "--process-label": "ignore", "--apparmor": "ignore", "--cap": "ignore", "-c": "ignore",
  "--preserve-fds": "ignore", "--cgroup": "ignore",
};
const BOOL_FLAGS: Record<string, keyof ParsedExec | "ignore"> = {
  "--tty": "tty", "-t": "tty",
  "--detach": "detach", "-d": "detach",
  "--no-new-privs": "ignore",
};

interface ParsedExec {
  id: string;
  command: string[];
  processFile?: string;
  env: string[];
  cwd?: string;
  user?: string;
  pidFile?: string;
  consoleSocket?: string;
  tty: boolean;
  detach: boolean;
}

export function parseExecArgs(raw: string[]): ParsedExec {
  const out: ParsedExec = { id: "", command: [], env: [], tty: false, detach: false };
  let i = 0;
  for (; i < raw.length && raw[i]!.startsWith("-"); i++) {
    const [name, inline] = raw[i]!.includes("=") ? raw[i]!.split(/=(.*)/s, 2) : [raw[i]!, undefined];
    const flag = name!;
    if (flag in BOOL_FLAGS) {
      const key = BOOL_FLAGS[flag]!;
      if (key !== "ignore") (out as any)[key] = inline === undefined ? true : inline !== "false";
      continue;
    }
    const key = VALUE_FLAGS[flag];
    if (!key) throw new HuskError(`exec: unknown option ${flag}`);
    const value = inline ?? raw[++i];
    if (value === undefined) throw new HuskError(`exec: option ${flag} needs a value`);
    if (key === "env") out.env.push(value);
    else if (key !== "ignore") (out as any)[key] = value;
  }
  out.id = raw[i] ?? "";
  out.command = raw.slice(i + 1);
  if (!out.id) throw new HuskError("exec: container id is required");
  if (!out.processFile && out.command.length === 0)
    throw new HuskError("exec: give a command after the container id, or --process <file>");
  return out;
}

export default defineCommand({
  meta: { name: "exec", description: "Run a new process inside a running container" },
  async run({ rawArgs }) {
    const p = parseExecArgs(rawArgs);
    const opts: ExecOptions = {
      processFile: p.processFile,
      args: p.command,
      env: p.env,
      cwd: p.cwd,
      user: p.user,
      tty: p.tty,
      detach: p.detach,
      pidFile: p.pidFile,
      consoleSocket: p.consoleSocket,
    };
    process.exitCode = await execInContainer(await context(), p.id, opts);
  },
});
