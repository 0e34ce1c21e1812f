import { describe, expect, test } from "vitest";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import ts from "typescript";

// The import rules of lib/ and cmd/, checked on the source text: which
// subsystem may import which, and through which file. A subsystem is the
// first folder under lib/ (lib/protocol/gen belongs to protocol); cmd/ is one.
// Each test lists every violation it finds, not just the first.

const ROOT = join(import.meta.dirname, "..");

// Bottom to top. A file may import its own subsystem and lower ranks only;
// subsystems sharing a rank may not import each other.
const LAYERS: readonly (readonly string[])[] = [
  ["sys"], // the one libc binding
  ["core"],
  ["config", "oci", "relay"], // relay: a shim's stdio carried to its proxy
  ["persist", "protocol"],
  ["guest", "network", "cgroups"], // guest assets; the netns a sandbox is given; its host cgroup
  ["hypervisor"],
  ["agent"],
  ["sandbox"],
  ["cmd"],
];

// Files another subsystem may import besides a subsystem's index.ts.
const EXTRA_FACES: Record<string, string> = {
  "lib/protocol/client/index.ts": "the runtime's end of the protocol, loadable without the server",
  "lib/protocol/server/index.ts": "the agent's end of the protocol, kept out of the client's load",
  "lib/protocol/proxy.ts": "the agent proxy's server (HTTP/2 upstream), loaded by `husk proxy` alone",
  "lib/protocol/capabilities.ts": "the capability table, light enough for `husk --version` at every start",
};

// cmd/husk.ts and cmd/oci/index.ts load each command file lazily, and a
// command imports its own operation file from lib/sandbox so that `husk state`
// never loads `create`. So cmd/ may import lib/sandbox/<file>.ts directly, and
// the entry point's static load must hold no lib/sandbox file (checked below).
const CMD_MAY_IMPORT = /^lib\/sandbox\/[^/]+\.ts$/;
const CLI_ENTRY = "cmd/husk.ts";

// Imports that leave lib/ and cmd/.
const OUTSIDE_ALLOWED: Record<string, string> = {
  "package.json": "the release version, inlined by the bundler (lib/core/build-info.ts)",
};

const SKIP = "lib/protocol/gen/"; // generated stubs: not scanned

interface Import {
  from: string; // repo-relative importing file
  to: string | undefined; // repo-relative target; undefined if external or unresolved
  spec: string;
  external: boolean; // a package or builtin: no target file
  line: number;
  dynamic: boolean; // import("...") call
  typeOnly: boolean; // erased at runtime: no load
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir)).sort()) {
    const rel = `${dir}/${name}`;
    if (statSync(join(ROOT, rel)).isDirectory()) {
      if (!`${rel}/`.startsWith(SKIP)) out.push(...sourceFiles(rel));
    } else if (name.endsWith(".ts")) out.push(rel);
  }
  return out;
}

function resolveSpec(from: string, spec: string): string | undefined {
  const base = join(dirname(join(ROOT, from)), spec);
  for (const candidate of [base, `${base}.ts`, join(base, "index.ts")])
    if (existsSync(candidate) && statSync(candidate).isFile()) return relative(ROOT, candidate);
  return undefined;
}

const allTypes = (elements: readonly { isTypeOnly: boolean }[]) => elements.length > 0 && elements.every((e) => e.isTypeOnly);

function typeOnlyImport(node: ts.ImportDeclaration): boolean {
  const clause = node.importClause;
  if (!clause) return false; // import "x": loaded for its side effects
  if (clause.isTypeOnly) return true;
  const named = clause.namedBindings;
  return !clause.name && named !== undefined && ts.isNamedImports(named) && allTypes(named.elements);
}

function typeOnlyExport(node: ts.ExportDeclaration): boolean {
  if (node.isTypeOnly) return true;
  const clause = node.exportClause;
  return clause !== undefined && ts.isNamedExports(clause) && allTypes(clause.elements);
}

// Every import, export-from, import("...") call and import("...") type of a file.
function importsOf(file: string): Import[] {
  const source = ts.createSourceFile(file, readFileSync(join(ROOT, file), "utf8"), ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: Import[] = [];
  const add = (node: ts.Node, specifier: ts.Node | undefined, dynamic: boolean, typeOnly: boolean) => {
    if (!specifier || !ts.isStringLiteralLike(specifier)) return; // computed: cannot be checked
    const spec = specifier.text;
    const external = !spec.startsWith(".");
    const line = source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1;
    out.push({ from: file, to: external ? undefined : resolveSpec(file, spec), spec, external, line, dynamic, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node, node.moduleSpecifier, false, typeOnlyImport(node));
    else if (ts.isExportDeclaration(node)) add(node, node.moduleSpecifier, false, typeOnlyExport(node));
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node, node.arguments[0], true, false);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node, node.argument.literal, false, true);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

function subsystemOf(file: string): string | undefined {
  if (file.startsWith("cmd/")) return "cmd";
  const m = /^lib\/([^/]+)\//.exec(file);
  return m?.[1];
}

const RANK = new Map(LAYERS.flatMap((names, rank) => names.map((n) => [n, rank] as const)));

const FILES = [...sourceFiles("lib"), ...sourceFiles("cmd")];
const IMPORTS = FILES.flatMap(importsOf);
const BY_FILE = Map.groupBy(IMPORTS, (i) => i.from);

// Commands the CLI loads on demand: what cmd/husk.ts and cmd/oci/index.ts import().
const COMMANDS = IMPORTS.filter((i) => i.dynamic && ["cmd/husk.ts", "cmd/oci/index.ts"].includes(i.from)).flatMap((i) => i.to ?? []);

// Static loads that must stay clear of some folders.
const CLOSURE_RULES: { name: string; from: string[]; forbidden: string[]; why: string }[] = [
  {
    name: "the protocol client loads no server code",
    from: ["lib/protocol/client/index.ts"],
    forbidden: ["lib/protocol/server/"],
    why: "the client loads no server code",
  },
  {
    name: "no CLI command but `husk agent` loads server code",
    from: [CLI_ENTRY, ...COMMANDS.filter((c) => c !== "cmd/agent.ts")],
    forbidden: ["lib/protocol/server/"],
    why: "the client entry point loads no server code",
  },
  {
    name: "`husk state` loads no protocol, hypervisor or agent code",
    from: ["cmd/oci/state.ts"],
    forbidden: ["lib/protocol/", "lib/hypervisor/", "lib/agent/"],
    why: "`husk state` must stay cheap",
  },
  {
    name: "the CLI entry point loads no lib/sandbox file (commands load their operation lazily)",
    from: [CLI_ENTRY],
    forbidden: ["lib/sandbox/"],
    why: "only a lazily loaded command may import its lib/sandbox operation",
  },
];

const where = (i: Import) => `${i.from}:${i.line} → ${i.to ?? i.spec}`;

// The imports between two different known subsystems.
function crossings(): (Import & { fromSub: string; toSub: string })[] {
  return IMPORTS.flatMap((i) => {
    const fromSub = subsystemOf(i.from);
    const toSub = i.to && subsystemOf(i.to);
    return fromSub && toSub && fromSub !== toSub ? [{ ...i, fromSub, toSub }] : [];
  });
}

// Files reached from `start` through imports that load at startup (static,
// not type-only), each with the import that first reached it.
function staticClosure(start: string): Map<string, Import | undefined> {
  const reached = new Map<string, Import | undefined>([[start, undefined]]);
  const queue = [start];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    for (const i of BY_FILE.get(file) ?? []) {
      if (i.dynamic || i.typeOnly || !i.to || reached.has(i.to)) continue;
      reached.set(i.to, i);
      queue.push(i.to);
    }
  }
  return reached;
}

function chain(reached: Map<string, Import | undefined>, file: string): string {
  const files = [file];
  for (let i = reached.get(file); i; i = reached.get(i.from)) files.unshift(i.from);
  return files.join(" → ");
}

// Shortest cycles through subsystems: from each subsystem, a breadth-first
// search back to itself. A cycle is reported once, from its first name.
function cycles(edges: Map<string, Set<string>>): string[][] {
  const found = new Map<string, string[]>();
  for (const start of [...edges.keys()].sort()) {
    const parent = new Map<string, string>();
    const queue = [start];
    for (let v = queue.shift(); v !== undefined; v = queue.shift()) {
      if (parent.has(start)) break;
      for (const w of [...(edges.get(v) ?? [])].sort()) {
        if (parent.has(w)) continue;
        parent.set(w, v);
        queue.push(w);
      }
    }
    if (!parent.has(start)) continue;
    const path = [start];
    for (let v = parent.get(start)!; v !== start; v = parent.get(v)!) path.unshift(v);
    const first = path.indexOf([...path].sort()[0]!);
    const cycle = [...path.slice(first), ...path.slice(0, first)];
    found.set(cycle.join(" "), cycle);
  }
  return [...found.values()];
}

describe("layers", () => {
  test("the scan sees the tree", () => {
    expect(FILES).toContain("lib/sys/index.ts");
    expect(FILES).toContain(CLI_ENTRY);
    expect(IMPORTS.length).toBeGreaterThan(100);
  });

  test("every import resolves to a file in lib/ or cmd/ (or a declared outside file)", () => {
    const bad = IMPORTS.flatMap((i) => {
      if (i.external) return [];
      if (!i.to) return [`${where(i)}: does not resolve to a file`];
      if (subsystemOf(i.to) || i.to in OUTSIDE_ALLOWED) return [];
      return [`${where(i)}: imports outside lib/ and cmd/`];
    });
    expect(bad).toEqual([]);
  });

  test("libc is bound once, in lib/sys", () => {
    const bad = IMPORTS.filter((i) => i.spec === "bun:ffi" && !i.from.startsWith("lib/sys/"));
    expect(bad.map((i) => `${where(i)}: only lib/sys binds libc`)).toEqual([]);
  });

  test("every subsystem has a place in the layer order", () => {
    const unknown = [...new Set(FILES.map(subsystemOf))].filter((s) => s === undefined || !RANK.has(s));
    expect(unknown, "add new subsystems to LAYERS").toEqual([]);
  });

  test("a: imports go only down the layer order", () => {
    const bad = crossings().flatMap((i) => {
      const from = RANK.get(i.fromSub);
      const to = RANK.get(i.toSub);
      if (from === undefined || to === undefined || to < from) return [];
      const how = to === from ? "shares its rank with" : "sits below";
      return [`${where(i)}: (a) layer order broken: ${i.fromSub} ${how} ${i.toSub} (${LAYERS.map((l) => l.join("|")).join(" < ")})`];
    });
    expect(bad).toEqual([]);
  });

  test("b: no cycles between subsystems", () => {
    const edges = new Map<string, Set<string>>();
    const example = new Map<string, Import>();
    for (const i of crossings()) {
      edges.set(i.fromSub, (edges.get(i.fromSub) ?? new Set()).add(i.toSub));
      if (!example.has(`${i.fromSub} ${i.toSub}`)) example.set(`${i.fromSub} ${i.toSub}`, i);
    }
    const bad = cycles(edges).map((cycle) => {
      const steps = cycle.map((sub, n) => where(example.get(`${sub} ${cycle[(n + 1) % cycle.length]}`)!));
      return `(b) cycle ${[...cycle, cycle[0]].join(" → ")}: ${steps.join(", then ")}`;
    });
    expect(bad).toEqual([]);
  });

  test("c, d: another subsystem is reached through its index.ts (or a declared face)", () => {
    const bad = crossings().flatMap((i) => {
      const to = i.to!;
      if (to === `lib/${i.toSub}/index.ts` || to in EXTRA_FACES) return [];
      if (i.fromSub === "cmd" && CMD_MAY_IMPORT.test(to)) return [];
      const rule = i.fromSub === "cmd" ? "(c, d: cmd/ may skip an index.ts only for lib/sandbox/<operation>.ts)" : "(c)";
      return [`${where(i)}: ${rule} reaches past lib/${i.toSub}/index.ts into another subsystem's internals`];
    });
    expect(bad).toEqual([]);
  });

  // Each import that carries a load across the boundary, once, with the start
  // files whose load it is part of.
  test.each(CLOSURE_RULES)("e: $name", ({ from, forbidden, why }) => {
    const banned = (file: string) => forbidden.some((f) => file.startsWith(f));
    const crossing = new Map<Import, string[]>();
    const paths = new Map<Import, string>();
    for (const start of from) {
      const reached = staticClosure(start);
      for (const file of reached.keys()) {
        if (banned(file)) continue;
        for (const i of BY_FILE.get(file) ?? []) {
          if (i.dynamic || i.typeOnly || !i.to || !banned(i.to)) continue;
          crossing.set(i, [...(crossing.get(i) ?? []), start]);
          if (!paths.has(i)) paths.set(i, chain(reached, file));
        }
      }
    }
    const bad = [...crossing].map(
      ([i, starts]) => `${where(i)}: (e) ${why}; loaded by ${starts.join(", ")} (via ${paths.get(i)})`,
    );
    expect(bad).toEqual([]);
  });
});
