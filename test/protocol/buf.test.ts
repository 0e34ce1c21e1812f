import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO } from "../helpers/husk.ts";

const BUF = join(REPO, "node_modules", ".bin", "buf");
const BASELINE = join(REPO, "proto", "baseline", "husk-agent-v1.binpb");
const tmp = mkdtempSync(join(tmpdir(), "husk-buf-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function buf(args: string[], cwd = REPO) {
  const r = spawnSync(BUF, args, { cwd, encoding: "utf8", timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

// A copy of the module (proto/ + buf.yaml) that a test may edit.
function copyModule(name: string): string {
  const dir = join(tmp, name);
  cpSync(join(REPO, "proto"), join(dir, "proto"), { recursive: true });
  cpSync(join(REPO, "buf.yaml"), join(dir, "buf.yaml"));
  return dir;
}

function edit(file: string, from: string, to: string) {
  const text = readFileSync(file, "utf8");
  expect(text).toContain(from);
  writeFileSync(file, text.replace(from, to));
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => relative(dir, join(d.parentPath, d.name)))
    .sort();
}

describe("buf gates", () => {
  it("the proto passes buf lint", () => {
    const r = buf(["lint"]);
    expect(r.out).toBe("");
    expect(r.status).toBe(0);
  });

  it("buf breaking passes against the baseline and fails when a field is renumbered", () => {
    const dir = copyModule("breaking");
    expect(buf(["breaking", "--against", BASELINE], dir).status).toBe(0);
    edit(join(dir, "proto/husk/agent/v1/container.proto"), "string oci_spec_json = 2;", "string oci_spec_json = 12;");
    const r = buf(["breaking", "--against", BASELINE], dir);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/CreateContainerRequest/);
  });

  it("adding a field is not breaking", () => {
    const dir = copyModule("additive");
    edit(join(dir, "proto/husk/agent/v1/handshake.proto"), "message HealthRequest {}", "message HealthRequest {\n  bool verbose = 1;\n}");
    const r = buf(["breaking", "--against", BASELINE], dir);
    expect(r.out).toBe("");
    expect(r.status).toBe(0);
  });

  it("lib/protocol/gen is exactly what buf generate produces", () => {
    const out = join(tmp, "gen");
    const template = {
      version: "v2",
      plugins: [{ local: join(REPO, "node_modules/.bin/protoc-gen-es"), out, opt: ["target=ts", "import_extension=ts"] }],
    };
    const r = buf(["generate", "proto", "--template", JSON.stringify(template)]);
    expect(r.status, r.out).toBe(0);
    const committed = join(REPO, "lib/protocol/gen");
    expect(listFiles(out)).toEqual(listFiles(committed));
    for (const f of listFiles(out)) expect(readFileSync(join(out, f), "utf8"), f).toBe(readFileSync(join(committed, f), "utf8"));
  });
});
