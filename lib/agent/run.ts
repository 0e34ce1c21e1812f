import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HuskError, VERSION, errorMessage, log } from "../core/index.ts";
import { serveAgent, type AgentListener, type AgentServer } from "../protocol/server/index.ts";
import { acceptConnection, closeFd, listenVsock } from "../sys/index.ts";
import { Engine } from "./engine/index.ts";
import { AGENT_CAPABILITIES, agentService } from "./service.ts";

export interface AgentOptions {
  listen: string; // unix:<path> | device:<path> | fd:<n> | virtio-serial:<port name> | vsock:<port>
  runtime: string;
  stateDir: string;
  guest: boolean;
}

// No udev in the guest: a virtio-serial port is found by the name the VMM gave it.
export function virtioPortByName(name: string, sysDir = "/sys/class/virtio-ports"): string {
  let ports: string[] = [];
  try {
    ports = readdirSync(sysDir);
  } catch {}
  for (const port of ports) {
    try {
      if (readFileSync(join(sysDir, port, "name"), "utf8").trim() === name) return `/dev/${port}`;
    } catch {}
  }
  throw new HuskError(`no virtio-serial port named ${JSON.stringify(name)} (looked in ${sysDir}: ${ports.join(", ") || "none"})`);
}

export function parseListen(spec: string): AgentListener {
  const [kind, value] = [spec.slice(0, spec.indexOf(":")), spec.slice(spec.indexOf(":") + 1)];
  if (kind === "unix" && value) return { unix: value };
  if (kind === "device" && value) return { device: value };
  if (kind === "virtio-serial" && value) return { device: virtioPortByName(value) };
  if (kind === "fd" && /^\d+$/.test(value)) return { fd: Number(value) };
  throw new HuskError(
    `agent --listen ${JSON.stringify(spec)}: use unix:<path>, virtio-serial:<port name>, vsock:<port>, device:<path> or fd:<n>`,
  );
}

// Nothing can pivot_root away from the kernel's own rootfs, the root of a
// guest whose init did not bind it over itself (assets of 0.2.0 and before, or a
// failed bind): its mount is its own parent in mountinfo.
function rootIsKernelRootfs(): boolean {
  try {
    return readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => {
      const [pre, post] = l.split(" - ");
      const [id, parent, , , mountPoint] = pre?.split(" ") ?? [];
      return mountPoint === "/" && id === parent && /^(rootfs|ramfs|tmpfs) /.test(post ?? "");
    });
  } catch {
    return false;
  }
}

async function runtimeVersion(runtime: string): Promise<string> {
  try {
    const p = Bun.spawn([runtime, "--version"], { stdout: "pipe", stderr: "ignore" });
    const text = await new Response(p.stdout).text();
    return /version\s+(\S+)/.exec(text)?.[1] ?? "";
  } catch {
    return "";
  }
}

// vsock: every accepted connection is one byte stream with its own HTTP/2
// session (the host's proxy normally holds just one).
function serveVsock(port: number, serve: (listener: AgentListener) => AgentServer): AgentServer {
  const listenFd = listenVsock(port);
  const conns = new Set<AgentServer>();
  const timer = setInterval(() => {
    for (let fd = acceptConnection(listenFd); fd !== undefined; fd = acceptConnection(listenFd)) conns.add(serve({ fd }));
  }, 20);
  return {
    async close() {
      clearInterval(timer);
      closeFd(listenFd);
      await Promise.all([...conns].map((c) => c.close()));
    },
  };
}

// A figure read from /proc for the boot stamp; "?" where it cannot be read.
const fromProc = (path: string, pick: (text: string) => string | undefined) => {
  try {
    return pick(readFileSync(path, "utf8")) ?? "?";
  } catch {
    return "?";
  }
};
const uptime = () => fromProc("/proc/uptime", (t) => t.split(" ")[0]);
// When this process was exec'd, in seconds since boot (stat's starttime, in
// USER_HZ ticks: 100 on Linux).
const execAt = () => fromProc("/proc/self/stat", (t) => (Number(t.split(") ")[1]!.split(" ")[19]) / 100).toFixed(2));

// A container that runs out of memory in the guest must never take the agent
// (and with it every container's stdio and exit status) along.
function protectFromOom(): void {
  try {
    writeFileSync("/proc/self/oom_score_adj", "-1000");
  } catch (e) {
    log.warn(`agent: cannot protect itself from the OOM killer: ${errorMessage(e)}`);
  }
}

// Serves until SIGTERM or SIGINT, then removes every container it runs.
export async function runAgent(o: AgentOptions): Promise<void> {
  const main = uptime();
  const vsockPort = /^vsock:(\d+)$/.exec(o.listen)?.[1];
  const listener = vsockPort ? undefined : parseListen(o.listen);
  if (o.guest) protectFromOom();
  const engine = await Engine.open({ stateDir: o.stateDir, runtime: o.runtime, noPivot: o.guest && rootIsKernelRootfs(), guest: o.guest });
  const impl = agentService({ engine, guest: o.guest, ociRuntime: o.runtime, ociRuntimeVersion: runtimeVersion(o.runtime) });
  const serve = (l: AgentListener) => serveAgent(impl, l, { agentVersion: VERSION, capabilities: AGENT_CAPABILITIES });
  const server = vsockPort ? serveVsock(Number(vsockPort), serve) : serve(listener!);
  log.info(`agent ${VERSION} serving on ${o.listen}`);
  // On the console: the boot breakdown's last steps (bench/vm.ts).
  if (o.guest) process.stderr.write(`husk-agent: at ${uptime()} serving (exec at ${execAt()}, main at ${main})\n`);
  // Start-up garbage (module loading, the handshake) would otherwise stay
  // in the guest's memory until allocation pressure collects it.
  if (o.guest) setTimeout(() => Bun.gc(true), 2000);
  await new Promise<void>((resolve) => {
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => resolve());
  });
  await server.close();
  await engine.close();
}
