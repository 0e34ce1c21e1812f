import { defineCommand, runCommand, runMain, showUsage, type CommandDef } from "citty";
import { ErrorCode, HuskError, VERSION, configureLog, errorMessage, fromSystemError, log } from "../lib/core/index.ts";
import { splitGlobals, setGlobals, getSettings, globalOptions } from "./globals.ts";
import { versionText } from "./version.ts";
import { checkCommandArgv } from "./argv.ts";
import { commonCommands, standardCommands } from "./oci/index.ts";

type Lazy = () => Promise<CommandDef<any>>;
const lazy = (load: () => Promise<{ default: CommandDef<any> }>): Lazy => () =>
  load().then((m) => m.default);

// Commands that parse their own arguments (exec: everything after the id is the command).
const OWN_PARSER = new Set(["exec"]);

// Commands are loaded on demand: `husk state` must not pay for `husk create`.
const subCommands: Record<string, Lazy> = {
  ...standardCommands,
  ...commonCommands,
  shim: lazy(() => import("./shim.ts")),
  agent: lazy(() => import("./agent.ts")),
  proxy: lazy(() => import("./proxy.ts")),
  gc: lazy(() => import("./gc.ts")),
  version: lazy(() => import("./version.ts")),
  inspect: lazy(() => import("./inspect.ts")),
  guest: lazy(() => import("./guest.ts")),
  check: lazy(() => import("./check.ts")),
};

const main = defineCommand({
  meta: { name: "husk", version: VERSION, description: "VM-isolated OCI container runtime" },
  subCommands,
});

// One line on stderr, and the same message in --log (text or JSON).
function reportError(thrown: unknown): number {
  const debug = globalOptions().debug === true;
  // The agent's errors too: the protocol client hands them over as HuskErrors.
  const e = fromSystemError(thrown);
  if (e instanceof HuskError) return report(oneLine(e.message), e.exitCode);
  const msg = oneLine(errorMessage(e));
  if ((e as { name?: string })?.name === "CLIError") return report(`${msg} (see husk --help)`, 1);
  if (debug && e instanceof Error) console.error(e.stack);
  return report(`internal error: ${msg}`, 1, !debug);
}

function report(msg: string, exitCode: number, print = true): number {
  if (print) console.error(`husk: ${msg}`);
  log.error(msg);
  return exitCode;
}

// A message that spans lines (a tool's stderr) is folded onto one; control
// and direction-changing characters from user input are shown escaped.
const oneLine = (msg: string): string => {
  const s = msg
    .trim()
    .replace(/\s*\n\s*/g, " | ")
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return s.length > 2000 ? `${s.slice(0, 2000)}...` : s;
};

async function run(argv: string[]): Promise<number> {
  const { globals, rest } = splitGlobals(argv);
  setGlobals(globals);
  if (rest.length === 0 || rest[0] === "--help" || rest[0] === "-h") {
    await showUsage(main);
    return rest.length === 0 ? 1 : 0;
  }
  if (rest[0] === "--version" || rest[0] === "-v") {
    console.log(versionText());
    return 0;
  }
  if (rest[0]! in subCommands && (rest[1] === "--help" || rest[1] === "-h")) {
    await runMain(main, { rawArgs: rest }); // prints the command's usage
    return 0;
  }
  if (rest[0]!.startsWith("-"))
    throw new HuskError(`unknown global flag ${rest[0]!.split("=")[0]} (see husk --help)`, { code: ErrorCode.InvalidArgument });
  if (!(rest[0]! in subCommands))
    throw new HuskError(`unknown command ${JSON.stringify(rest[0])} (see husk --help)`, { code: ErrorCode.InvalidArgument });
  if (!OWN_PARSER.has(rest[0]!)) await checkCommandArgv(rest[0]!, await subCommands[rest[0]!]!(), rest.slice(1));
  if (globals.logPath || globals.configPath) getSettings(); // errors before the command runs go to --log too
  await runCommand(main, { rawArgs: rest });
  return 0;
}

configureLog({ format: "text", debug: false });
try {
  process.exitCode = (await run(process.argv.slice(2))) || Number(process.exitCode ?? 0);
} catch (e) {
  process.exitCode = reportError(e);
}
// Pending stdin reads or sockets must not keep a finished command alive.
process.exit(process.exitCode);
