// A stand-in for cloud-hypervisor, run by the clh driver exactly as it would
// run the real binary (`--api-socket <path>`). It serves the REST API on that
// socket with the VM state rules of the published spec, validates every body
// it receives against the spec's schemas (strict: unknown fields are errors),
// writes snapshots it can restore, and serves the VM's hybrid-vsock socket with
// an echoing "agent" on the listening ports.
//
// Double-only flags (a launcher script adds them before the driver's args):
//   --double-version V     what vmm.ping reports (default v53.0)
//   --double-record FILE   append one JSON line per request: method, endpoint, body, status
//   --double-ports A,B     guest vsock ports with a listener (default 1024)
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { BUN } from "./husk.ts";
import { loadChSpec } from "../clh/spec.ts";

export const DOUBLE_SCRIPT = import.meta.filename;
export const DOUBLE_DEFAULT_VERSION = "v53.0";

export interface DoubleOptions {
  version?: string;
  record?: string;
  ports?: number[];
}

// Writes an executable that starts the double the way settings.clhPath names
// a cloud-hypervisor binary; returns its path.
export function writeDoubleLauncher(dir: string, opts: DoubleOptions = {}, name = "cloud-hypervisor"): string {
  const args = [BUN, DOUBLE_SCRIPT, "--double-version", opts.version ?? DOUBLE_DEFAULT_VERSION];
  if (opts.record) args.push("--double-record", opts.record);
  if (opts.ports) args.push("--double-ports", opts.ports.join(","));
  const path = join(dir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path, `#!/bin/sh\nexec ${args.map(shellQuote).join(" ")} "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

export interface RecordedRequest {
  method: string;
  endpoint: string;
  body?: unknown;
  status: number;
}

export function readRecord(path: string): RecordedRequest[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as RecordedRequest);
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

// ---- the double itself ------------------------------------------------------

type VmState = "Created" | "Running" | "Paused" | "Shutdown";
type Json = Record<string, any>;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function parseArgs(argv: string[]) {
  const opts = { apiSocket: "", version: DOUBLE_DEFAULT_VERSION, record: "", ports: [1024] };
  for (let i = 0; i < argv.length; i++) {
    const value = () => argv[++i] ?? die(`${argv[i - 1]} needs a value`);
    switch (argv[i]) {
      case "--api-socket":
        opts.apiSocket = value();
        break;
      case "--double-version":
        opts.version = value();
        break;
      case "--double-record":
        opts.record = value();
        break;
      case "--double-ports":
        opts.ports = value().split(",").map(Number);
        break;
      default:
        die(`unknown argument ${argv[i]}`);
    }
  }
  if (!opts.apiSocket) die("--api-socket is required");
  return opts;
}

function die(msg: string): never {
  console.error(`clh-double: ${msg}`);
  process.exit(2);
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

function fileDir(url: unknown, what: string): string {
  if (typeof url !== "string" || !url.startsWith("file://")) throw new HttpError(400, `${what} must be a file:// URL`);
  const dir = url.slice("file://".length);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new HttpError(500, `${what} ${dir} is not a directory`);
  return dir;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const spec = loadChSpec();
  let vm: { state: VmState; config: Json } | undefined;
  let vsock: Server | undefined;
  let backends: Socket[] = []; // vhost-user connections, held while the VM exists
  const parked: (() => void)[] = []; // handshakes waiting for a paused guest
  let hostPort = 1_073_741_824;

  // The status to answer with: the spec's, when it lists one for this case.
  const refuse = (endpoint: string, status: number, message: string): never => {
    throw new HttpError(spec.lists(endpoint, "put", status) ? status : 500, message);
  };
  const need = (endpoint: string, ...states: VmState[]): Json => {
    if (!vm) refuse(endpoint, 404, "VM is not created");
    if (!states.includes(vm!.state)) refuse(endpoint, 405, `VM is ${vm!.state}, needs ${states.join(" or ")}`);
    return vm!;
  };
  const setState = (s: VmState) => {
    vm!.state = s;
    if (s === "Running") for (const go of parked.splice(0)) go();
  };

  function checkDevices(config: Json, endpoint: string): void {
    const fs: Json[] = config.fs ?? [];
    const segments = config.platform?.num_pci_segments ?? 1;
    for (const f of fs) {
      if ((f.pci_segment ?? 0) >= segments)
        refuse(endpoint, 400, `fs ${f.tag}: pci_segment ${f.pci_segment} needs platform.num_pci_segments > ${f.pci_segment}`);
      if (!config.memory?.shared) refuse(endpoint, 400, `fs ${f.tag}: vhost-user devices need memory.shared=true`);
    }
  }

  function plugDevices(config: Json, endpoint: string): void {
    for (const f of (config.fs ?? []) as Json[])
      if (!isSocket(f.socket)) refuse(endpoint, 500, `fs ${f.tag}: cannot connect to vhost-user socket ${f.socket}`);
    backends = ((config.fs ?? []) as Json[]).map((f) => connect(f.socket).on("error", () => {}));
    if (config.serial?.mode === "File") writeFileSync(config.serial.file, "clh-double: serial console\n", { flag: "a" });
    if (config.vsock) listenVsock(config.vsock.socket, endpoint);
  }

  function listenVsock(path: string, endpoint: string): void {
    if (existsSync(path)) refuse(endpoint, 409, `vsock socket ${path} already exists`);
    if (!existsSync(dirname(path))) refuse(endpoint, 500, `vsock socket directory ${dirname(path)} does not exist`);
    vsock = createServer((conn) => handshake(conn));
    vsock.listen(path);
  }

  // Hybrid vsock: "CONNECT <port>\n" -> "OK <host port>\n", then the guest
  // listener (an echo) owns the stream. A port without listener is closed.
  function handshake(conn: Socket): void {
    let buf = Buffer.alloc(0);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0) return;
      conn.removeListener("data", onData);
      const m = /^CONNECT (\d+)$/.exec(buf.subarray(0, nl).toString());
      const rest = buf.subarray(nl + 1);
      const answer = () => {
        if (!m || !opts.ports.includes(Number(m[1]))) return conn.destroy();
        conn.write(`OK ${hostPort++}\n`);
        if (rest.length) conn.write(rest);
        conn.on("data", (more) => conn.write(more));
      };
      if (vm?.state === "Running") answer();
      else parked.push(answer);
    };
    conn.on("data", onData);
    conn.on("error", () => {});
  }

  function unplug(): void {
    for (const b of backends.splice(0)) b.destroy();
    vsock?.close();
    vsock = undefined;
    if (vm?.config.vsock) rmSync(vm.config.vsock.socket, { force: true });
  }

  function validBody(endpoint: string, method: string, body: unknown): void {
    const schema = spec.requestSchema(endpoint, method);
    if (!schema) return;
    if (body === undefined) throw new HttpError(400, `${schema} body required`);
    const errors = spec.check(schema, body);
    if (errors.length) throw new HttpError(400, `invalid ${schema}: ${errors.join("; ")}`);
  }

  const routes: Record<string, (body: any) => unknown> = {
    "GET vmm.ping": () => ({ build_version: `${opts.version}-double`, version: opts.version, pid: process.pid, features: [] }),
    "PUT vmm.shutdown": () => {
      unplug();
      setTimeout(() => process.exit(0), 20);
    },
    "GET vm.info": () => {
      if (!vm) throw new HttpError(404, "VM is not created");
      return { config: vm.config, state: vm.state };
    },
    "PUT vm.create": (config: Json) => {
      if (vm) refuse("vm.create", 409, "VM is already created");
      checkDevices(config, "vm.create");
      vm = { state: "Created", config };
    },
    "PUT vm.boot": () => {
      const v = need("vm.boot", "Created");
      if (!existsSync(v.config.payload.kernel)) refuse("vm.boot", 500, `cannot open kernel ${v.config.payload.kernel}`);
      plugDevices(v.config, "vm.boot");
      setState("Running");
    },
    "PUT vm.pause": () => {
      need("vm.pause", "Running");
      setState("Paused");
    },
    "PUT vm.resume": () => {
      need("vm.resume", "Paused");
      setState("Running");
    },
    "PUT vm.shutdown": () => {
      need("vm.shutdown", "Running", "Paused");
      unplug();
      setState("Shutdown");
    },
    "PUT vm.delete": () => {
      unplug();
      vm = undefined;
    },
    "PUT vm.snapshot": (body: Json) => {
      const v = need("vm.snapshot", "Paused");
      const dir = fileDir(body.destination_url, "destination_url");
      // What a VMM writes: its full config (with the defaults it filled in), device state, memory.
      const config = structuredClone(v.config);
      if (config.vsock) Object.assign(config.vsock, { iommu: false, id: "_vsock0" });
      (config.fs ?? []).forEach((f: Json, i: number) => (f.id = `_fs${i}`));
      writeFileSync(join(dir, "config.json"), JSON.stringify(config));
      writeFileSync(join(dir, "state.json"), JSON.stringify({ double: opts.version, state: "Paused" }));
      writeFileSync(join(dir, "memory-ranges"), Buffer.alloc(4096, 0xa5));
    },
    "PUT vm.restore": (body: Json) => {
      if (vm) refuse("vm.restore", 404, "a VM is already created");
      const dir = fileDir(body.source_url, "source_url");
      for (const f of ["config.json", "state.json", "memory-ranges"])
        if (!existsSync(join(dir, f))) refuse("vm.restore", 400, `snapshot ${dir} lacks ${f}`);
      const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Json;
      const errors = spec.check("VmConfig", config);
      if (errors.length) refuse("vm.restore", 400, `snapshot config.json: ${errors.join("; ")}`);
      checkDevices(config, "vm.restore");
      vm = { state: "Paused", config };
      try {
        plugDevices(config, "vm.restore");
      } catch (e) {
        vm = undefined;
        throw e;
      }
      if (body.resume) setState("Running");
    },
  };

  const record = (entry: RecordedRequest) => {
    if (opts.record) appendFileSync(opts.record, JSON.stringify(entry) + "\n");
  };

  Bun.serve({
    unix: opts.apiSocket,
    async fetch(req) {
      const url = new URL(req.url);
      const endpoint = url.pathname.replace(/^\/api\/v1\//, "");
      const text = await req.text();
      let body: unknown;
      let status = 500;
      try {
        if (!url.pathname.startsWith("/api/v1/")) throw new HttpError(404, "unknown path");
        try {
          body = text ? JSON.parse(text) : undefined;
        } catch {
          throw new HttpError(400, "body is not JSON");
        }
        const route = routes[`${req.method} ${endpoint}`];
        if (!route) throw new HttpError(404, `no endpoint ${req.method} /${endpoint}`);
        validBody(endpoint, req.method, body);
        const out = route(body);
        status = out === undefined ? 204 : 200;
        return out === undefined ? new Response(null, { status }) : Response.json(out, { status });
      } catch (e) {
        status = e instanceof HttpError ? e.status : 500;
        return new Response(`clh-double: ${(e as Error).message}`, { status });
      } finally {
        record({ method: req.method, endpoint, ...(body !== undefined ? { body } : {}), status });
      }
    },
  });
  process.on("SIGTERM", () => {
    unplug();
    process.exit(0);
  });
}

if (import.meta.main) await main();
