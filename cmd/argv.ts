import type { ArgDef, ArgsDef, CommandDef } from "citty";
import { ErrorCode, HuskError } from "../lib/core/index.ts";

// citty accepts any flag and any number of positionals; runc does not. Every
// command's arguments are checked here against what it declares, before it
// runs: an unknown flag, a flag without its value, a value a flag does not
// take, or a positional too many is an error that names it.

const invalid = (msg: string) => new HuskError(msg, { code: ErrorCode.InvalidArgument });

interface Flag {
  name: string;
  def: ArgDef;
}

function flagTable(args: ArgsDef): Map<string, Flag> {
  const table = new Map<string, Flag>();
  for (const [name, def] of Object.entries(args)) {
    if (def.type === "positional") continue;
    const alias = (def as { alias?: string | string[] }).alias;
    const aliases = alias === undefined ? [] : Array.isArray(alias) ? alias : [alias];
    for (const n of [name, ...aliases]) table.set(n.length === 1 ? `-${n}` : `--${n}`, { name, def });
  }
  return table;
}

// Closest declared flag within two edits, for "did you mean".
function closest(flag: string, names: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestCost = 3;
  for (const n of names) {
    const cost = distance(flag, n);
    if (cost < bestCost) [best, bestCost] = [n, cost];
  }
  return best;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++)
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    // a swap of two neighbours is one edit
    if (i > 1) for (let j = 2; j <= b.length; j++)
      if (a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) cur[j] = Math.min(cur[j]!, prev[j - 2]! + 1);
    prev = cur;
  }
  return prev[b.length]!;
}

// Shown for a value: short, printable.
export const quote = (s: string, max = 80): string =>
  JSON.stringify(s.length > max ? `${s.slice(0, max)}...` : s);

export function checkArgv(command: string, args: ArgsDef, argv: readonly string[]): void {
  const flags = flagTable(args);
  const positionals = Object.entries(args).filter(([, d]) => d.type === "positional");
  const extra: string[] = [];
  let count = 0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      count += argv.length - i - 1;
      extra.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      count++;
      extra.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq < 0 ? arg : arg.slice(0, eq);
    const inline = eq < 0 ? undefined : arg.slice(eq + 1);
    let flag = flags.get(name);
    if (!flag && name.startsWith("--no-")) {
      const negated = flags.get(`--${name.slice(5)}`);
      if (negated?.def.type === "boolean" && inline === undefined) continue;
    }
    if (!flag) {
      const hint = name.startsWith("--") ? closest(name, [...flags.keys()].filter((k) => k.startsWith("--"))) : undefined;
      throw invalid(`${command}: unknown flag ${quote(name, 40).slice(1, -1)}${hint ? ` (did you mean ${hint}?)` : ""}`);
    }
    if (flag.def.type === "boolean") {
      if (inline !== undefined && !["true", "false"].includes(inline))
        throw invalid(`${command}: flag ${name} takes no value other than true or false, got ${quote(inline)}`);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw invalid(`${command}: flag needs an argument: ${name}`);
    const options = flag.def.type === "enum" ? flag.def.options : undefined;
    if (options && !options.includes(value))
      throw invalid(`${command}: flag ${name} must be one of ${options.join(", ")}, not ${quote(value)}`);
  }
  if (count > positionals.length) {
    const wanted = positionals.length === 0 ? "no arguments" : `${positionals.length} argument${positionals.length > 1 ? "s" : ""} (${positionals.map(([n, d]) => d.description ?? n).join(", ")})`;
    throw invalid(`${command}: takes ${wanted}, got ${count}: unexpected ${quote(extra[positionals.length]!)}`);
  }
}

// Finds the (sub)command argv names and checks its arguments.
export async function checkCommandArgv(path: string, def: CommandDef<any>, argv: readonly string[]): Promise<void> {
  const subs = await resolve(def.subCommands);
  if (subs) {
    const first = argv[0];
    const sub = first !== undefined && first in subs ? await resolve(subs[first]!) : undefined;
    if (sub) return checkCommandArgv(`${path} ${first}`, sub, argv.slice(1));
    if (first !== undefined && !first.startsWith("-"))
      throw invalid(`${path}: unknown command ${quote(first, 40)} (one of ${Object.keys(subs).join(", ")})`);
  }
  if (def.run) checkArgv(path, (await resolve(def.args)) ?? {}, argv);
}

async function resolve<T>(r: T | Promise<T> | (() => T) | (() => Promise<T>) | undefined): Promise<T | undefined> {
  return typeof r === "function" ? await (r as () => T | Promise<T>)() : await r;
}
