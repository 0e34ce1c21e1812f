import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { downloadDebs, extractDeb } from "../../lib/guest/apt.ts";
import { REPO } from "./husk.ts";

// A CRI client as kubelet has one: cri-api's api.proto, taken from Debian's
// golang-github-kubernetes-cri-api-dev (trixie) at test time, stubs generated
// by buf + protoc-gen-es outside the repository, gRPC over containerd's unix
// socket. Nothing generated here is committed.

const CACHE = process.env.HUSK_TEST_CRI_CACHE ?? "/var/tmp/husk-cri-api";
const PACKAGE = "golang-github-kubernetes-cri-api-dev";
const PROTO_IN_PACKAGE = "usr/share/gocode/src/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto";

function sh(cmd: string[], cwd?: string): void {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd, encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd.join(" ")}: ${(r.stderr || r.stdout || "").trim()}`);
}

// gogo.proto only carries Go code-generation options: its import and options go.
const withoutGogo = (proto: string) => proto.split("\n").filter((l) => !l.includes("gogo")).join("\n");

// The generated module's directory (one per package version, kept between runs).
export function generateCriStubs(): string {
  const [deb] = downloadDebs({ suite: "trixie", cacheDir: CACHE }, [PACKAGE]);
  const out = join(CACHE, `gen-${deb!.version}`);
  if (existsSync(join(out, "runtime", "v1", "api_pb.ts"))) return out;
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  extractDeb(deb!, join(tmp, "deb"));
  mkdirSync(join(tmp, "proto", "runtime", "v1"), { recursive: true });
  writeFileSync(join(tmp, "proto", "runtime", "v1", "api.proto"), withoutGogo(readFileSync(join(tmp, "deb", PROTO_IN_PACKAGE), "utf8")));
  const template = { version: "v2", plugins: [{ local: join(REPO, "node_modules", ".bin", "protoc-gen-es"), out: "gen", opt: ["target=ts", "import_extension=ts"] }] };
  sh([join(REPO, "node_modules", ".bin", "buf"), "generate", "proto", "--template", JSON.stringify(template)], tmp);
  // The stubs import @bufbuild/protobuf: resolved through the repository's node_modules.
  symlinkSync(join(REPO, "node_modules"), join(tmp, "gen", "node_modules"));
  rmSync(out, { recursive: true, force: true });
  renameSync(join(tmp, "gen"), out);
  rmSync(tmp, { recursive: true, force: true });
  return out;
}

// The generated module is loaded at run time, so its types are not known
// here: every method is a unary call taking and giving a plain message.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Message = any;
export type Cri = Record<string, (request: Message) => Promise<Message>>;
export type CriApi = Record<string, Message>;

export interface CriClients {
  api: CriApi; // the generated module: enums (ContainerState, ...) and schemas
  runtime: Cri;
  image: Cri;
}

export async function criClients(socket: string): Promise<CriClients> {
  const api = (await import(join(generateCriStubs(), "runtime", "v1", "api_pb.ts"))) as CriApi;
  const transport = createGrpcTransport({
    baseUrl: "http://localhost",
    nodeOptions: { createConnection: () => connect(socket) },
  });
  const client = (service: Message) => createClient(service, transport) as unknown as Cri;
  return { api, runtime: client(api.RuntimeService), image: client(api.ImageService) };
}
