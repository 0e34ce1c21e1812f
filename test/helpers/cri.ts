import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { downloadDebs, extractDeb } from "../../lib/guest/apt.ts";
import { REPO, builtBinary } from "./husk.ts";
import { startContainerd, type Containerd } from "./containerd.ts";
import { busyboxOciTar } from "./images.ts";

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

// A one-machine Kubernetes node as kubelet sees it: containerd with its CRI
// plugin in a network namespace of its own (its CNI bridge, pods' netns and
// hostPorts stay in it), a handler `runc` and one handler per husk driver
// (the runc shim with BinaryName = a wrapper naming that driver's config),
// the pause and busybox images imported.

export const PAUSE_IMAGE = "localhost/husk-pause:latest";
export const BUSYBOX_IMAGE = "localhost/husk-busybox:latest";

export interface HuskHandler {
  driver: string;
  guest?: Record<string, string>; // vmEnv()'s HUSK_GUEST_DIR / HUSK_GUEST_VERSION for qemu
  config?: string; // more of husk's config file (TOML tables), e.g. another QEMU
}

export interface CriNode {
  netns: string; // name under /run/netns
  subnet: string; // the bridge's /24, as "a.b.c"; the host side is .1
  containerd: Containerd;
  cri: CriClients;
  handlers: Record<string, HuskWrapper>;
  inNs(cmd: string[]): { status: number; stdout: string; stderr: string };
  stop(): Promise<void>;
}

function run(cmd: string[], timeout = 60_000) {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: "utf8", timeout });
  return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

// containerd's shim passes no settings but --root (<root>/<namespace>): a
// wrapper names a config file.
export interface HuskWrapper {
  bin: string;
  config: string;
  root: string;
}

function huskWrapper(dir: string, name: string, h: HuskHandler, husk: string): HuskWrapper {
  const root = join(dir, `husk-${name}`);
  const config = join(dir, `husk-${name}.toml`);
  const g = h.guest?.HUSK_GUEST_DIR ? `[guest]\ndir = "${h.guest.HUSK_GUEST_DIR}"\nversion = "${h.guest.HUSK_GUEST_VERSION}"\n` : "";
  writeFileSync(config, `root = "${root}"\nhypervisor = "${h.driver}"\n${g}${h.config ?? ""}`);
  const bin = join(dir, `husk-${name}`) + ".sh";
  writeFileSync(bin, `#!/bin/sh\nexec ${husk} --config ${config} "$@"\n`);
  chmodSync(bin, 0o755);
  return { bin, config, root };
}

// restrict_oom_score_adj: containerd's -998 for the sandbox needs
// CAP_SYS_RESOURCE, which these machines lack. pod_annotations: a pod's
// io.husk.* annotations reach husk.
function criConfig(dir: string, handlers: CriNode["handlers"]): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const runtime = (name: string) => [`[${cri}.containerd.runtimes.${name}]`, '  runtime_type = "io.containerd.runc.v2"'];
  return [
    `[${cri}]`, `  sandbox_image = "${PAUSE_IMAGE}"`, "  restrict_oom_score_adj = true", "  netns_mounts_under_state_dir = true",
    `[${cri}.containerd]`, '  default_runtime_name = "runc"',
    ...runtime("runc"),
    ...Object.entries(handlers).flatMap(([name, h]) => [
      ...runtime(name),
      '  pod_annotations = ["io.husk.*"]',
      `[${cri}.containerd.runtimes.${name}.options]`, `  BinaryName = "${h.bin}"`, `  Root = "${h.root}"`, "  SystemdCgroup = false",
    ]),
    `[${cri}.cni]`, '  bin_dir = "/usr/lib/cni"', `  conf_dir = "${dir}/cni"`,
  ].join("\n");
}

// containernetworking-plugins: bridge + host-local + portmap (containerd adds loopback).
function cniConfig(dir: string, bridge: string, subnet: string): void {
  mkdirSync(join(dir, "cni"), { recursive: true });
  const ipam = { type: "host-local", ranges: [[{ subnet: `${subnet}.0/24` }]], routes: [{ dst: "0.0.0.0/0" }], dataDir: join(dir, "ipam") };
  writeFileSync(join(dir, "cni", "10-husk.conflist"), JSON.stringify({
    cniVersion: "0.4.0",
    name: bridge,
    plugins: [{ type: "bridge", bridge, isGateway: true, ipMasq: false, ipam }, { type: "portmap", capabilities: { portMappings: true } }],
  }));
}

// `n` tells apart nodes that may run at once (netns, bridge and subnet).
export async function startCriNode(dir: string, n: number, huskHandlers: Record<string, HuskHandler>): Promise<CriNode> {
  const netns = `husk-cri-${process.pid}-${n}`;
  const nsPath = `/run/netns/${netns}`;
  const subnet = `10.90.${((process.pid % 50) * 5 + n) % 250}`;
  const inNs = (cmd: string[]) => run(["nsenter", `--net=${nsPath}`, ...cmd]);
  mkdirSync(dir, { recursive: true });
  const made = run(["ip", "netns", "add", netns]);
  if (made.status !== 0) throw new Error(`ip netns add ${netns}: ${made.stderr.trim()}`);
  let containerd: Containerd | undefined;
  try {
    inNs(["ip", "link", "set", "lo", "up"]);
    cniConfig(dir, `huskcri${n}`, subnet);
    // A copy of the binary: others may rebuild dist/husk while pods run.
    const husk = join(dir, "husk");
    copyFileSync(builtBinary(), husk);
    const handlers = Object.fromEntries(Object.entries(huskHandlers).map(([name, h]) => [name, huskWrapper(dir, name, h, husk)]));
    containerd = await startContainerd({ dir, netns: nsPath, cri: criConfig(dir, handlers) });
    for (const [name, config] of [[PAUSE_IMAGE, { Cmd: ["sleep", "2147483647"] }], [BUSYBOX_IMAGE, {}]] as const) {
      const imp = containerd.ctr("-n", "k8s.io", "image", "import", busyboxOciTar(join(dir, `img-${name.replace(/\W/g, "_")}`), name, config));
      if (imp.status !== 0) throw new Error(`ctr image import ${name}: ${imp.stderr.trim()}`);
    }
    const cri = await criClients(containerd.socket);
    const c = containerd;
    const stop = async () => {
      await c.stop();
      run(["ip", "netns", "del", netns]);
      rmSync(husk, { force: true });
    };
    return { netns, subnet, containerd: c, cri, handlers, inNs, stop };
  } catch (e) {
    await containerd?.stop();
    run(["ip", "netns", "del", netns]);
    throw e;
  }
}
