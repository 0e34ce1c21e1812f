// The 1.0 `hypervisor` section, both ways. Format 1.1 keeps the VM, the proxy
// and snapshots in typed sections; release 0.1.0 (format 1.0) reads them from
// `hypervisor` and its `extra` map. So:
//   - up (migration 1.0 -> 1.1): the typed sections are rebuilt from
//     `hypervisor` whenever they are missing or describe another VM (a 1.0
//     release restored the sandbox into a new one);
//   - down (every save): `hypervisor` is written from the typed sections, with
//     exactly the keys 0.1.0 reads. Keys it does not read are kept as found.
// Pure functions: no I/O, inputs never mutated.
import type * as v from "valibot";
import type { HypervisorV1 } from "./v1.ts";
import type { ProcessRefV1_1, ProxyV1_1, SnapshotV1_1, VmV1_1 } from "./v1_1.ts";

type Hypervisor = v.InferOutput<typeof HypervisorV1>;
type Vm = v.InferOutput<typeof VmV1_1>;
type ProcessRef = v.InferOutput<typeof ProcessRefV1_1>;
type Proxy = v.InferOutput<typeof ProxyV1_1>;
type Snapshot = v.InferOutput<typeof SnapshotV1_1>;
type Doc = Record<string, unknown> & {
  hypervisor?: Hypervisor;
  vm?: Vm;
  proxy?: Proxy;
  snapshots?: Snapshot[];
  config: { sharedDir?: string };
  agent?: { channel: { path: string } };
};

const num = (x: unknown) => (typeof x === "number" ? x : undefined);
const str = (x: unknown) => (typeof x === "string" ? x : undefined);
const ref = (pid: number | undefined, startTime: number | undefined): ProcessRef | undefined =>
  pid ? { pid, ...(startTime !== undefined ? { startTime } : {}) } : undefined;
const defined = <T extends Record<string, unknown>>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as T;

// The process a 1.0 document names as the VM (for local: the agent).
const mainProcess = (vm: Vm): ProcessRef | undefined => (vm.driver === "local" ? vm.agent : vm.vmm);

function vmFromHypervisor(h: Hypervisor, sharedDir: string | undefined): Vm {
  const x = h.extra ?? {};
  const dir = h.vmDir;
  const fsd = (socket: string, startTime: unknown) =>
    h.virtiofsdPid
      ? { process: ref(h.virtiofsdPid, num(startTime))!, socket, sharedDir: str(x.sharedDir) ?? sharedDir ?? "", tag: "husk" }
      : undefined;
  switch (h.driver) {
    case "local":
      return defined({ driver: "local", dir, agent: ref(h.pid, h.pidStartTime), socket: h.agent.path });
    case "qemu":
      return defined({
        driver: "qemu", dir, vmm: ref(h.pid, h.pidStartTime),
        qmpSocket: h.apiSocket ?? `${dir}/qmp.sock`, agentSocket: h.agent.path,
        accel: x.accel === "kvm" ? "kvm" : "tcg", accelReason: str(x.accelReason),
        assetsVersion: h.assetsVersion ?? "unknown",
        virtiofsd: fsd(`${dir}/vfs.sock`, x.virtiofsdStartTime), agentInShare: str(x.agentInShare),
      });
    case "clh":
      return defined({
        driver: "clh", dir, vmm: ref(h.pid, num(x.pidStartTime) ?? h.pidStartTime),
        apiSocket: h.apiSocket ?? `${dir}/clh-api.sock`, vsockSocket: h.agent.path, agentPort: h.agent.port ?? 1024,
        vmmVersion: str(x.vmmVersion), assetsVersion: h.assetsVersion,
        virtiofsd: fsd(`${dir}/virtiofs.sock`, x.virtiofsdStartTime),
      });
  }
}

const sameVm = (vm: Vm | undefined, h: Hypervisor) =>
  !!vm && vm.driver === h.driver && vm.dir === h.vmDir && mainProcess(vm)?.pid === h.pid;

function proxyFromExtra(doc: Doc): Proxy | undefined {
  const x = doc.hypervisor?.extra ?? {};
  const pid = num(x.proxyPid);
  if (!pid || !doc.agent) return undefined;
  if (doc.proxy?.process.pid === pid) return doc.proxy;
  return { process: ref(pid, num(x.proxyStartTime))!, socket: doc.agent.channel.path };
}

function snapshotsFromExtra(doc: Doc): Snapshot[] | undefined {
  const last = doc.hypervisor?.extra?.lastSnapshot as Partial<Snapshot> | undefined;
  const known = doc.snapshots ?? [];
  if (!last?.path || !last.createdAt || known.some((s) => s.path === last.path && s.createdAt === last.createdAt))
    return doc.snapshots;
  const snap = defined({ driver: doc.hypervisor!.driver, path: last.path, createdAt: last.createdAt, vmmVersion: last.vmmVersion, sourceVmDir: last.sourceVmDir ?? doc.hypervisor!.vmDir });
  return [...known, snap];
}

// Migration 1.0 -> 1.1: the typed sections, from what a 1.0 writer left.
export function typedFromLegacy<D extends Doc>(doc: D): D {
  const h = doc.hypervisor;
  if (!h) return doc;
  const vm = sameVm(doc.vm, h) ? doc.vm : vmFromHypervisor(h, doc.config.sharedDir);
  return withLegacy(defined({ ...doc, vm, proxy: proxyFromExtra(doc), snapshots: snapshotsFromExtra(doc) }));
}

function legacyCore(vm: Vm): Omit<Hypervisor, "extra"> & { extra: Record<string, unknown> } {
  const main = mainProcess(vm);
  const base = { driver: vm.driver, vmDir: vm.dir, pid: main?.pid, pidStartTime: main?.startTime };
  switch (vm.driver) {
    case "local":
      return defined({ ...base, agent: { kind: "unix" as const, path: vm.socket }, extra: {} });
    case "qemu":
      return defined({
        ...base, apiSocket: vm.qmpSocket, agent: { kind: "virtio-serial" as const, path: vm.agentSocket },
        assetsVersion: vm.assetsVersion, virtiofsdPid: vm.virtiofsd?.process.pid,
        extra: defined({
          accel: vm.accel, accelReason: vm.accelReason, sharedDir: vm.virtiofsd?.sharedDir,
          virtiofsdStartTime: vm.virtiofsd?.process.startTime, agentInShare: vm.agentInShare,
        }),
      });
    case "clh":
      return defined({
        ...base, apiSocket: vm.apiSocket, agent: { kind: "hybrid-vsock" as const, path: vm.vsockSocket, port: vm.agentPort },
        assetsVersion: vm.assetsVersion, virtiofsdPid: vm.virtiofsd?.process.pid,
        extra: defined({ pidStartTime: main?.startTime, virtiofsdStartTime: vm.virtiofsd?.process.startTime, vmmVersion: vm.vmmVersion }),
      });
  }
}

// Keys of `extra` that this module writes; all others are kept as found.
const OWNED_EXTRA = ["accel", "accelReason", "sharedDir", "virtiofsdStartTime", "agentInShare", "pidStartTime", "vmmVersion", "proxyPid", "proxyStartTime", "lastSnapshot"];

// Before every save: `hypervisor` as 0.1.0 reads it, from the typed sections.
export function withLegacy<D extends Doc>(doc: D): D {
  if (!doc.vm) return doc;
  const core = legacyCore(doc.vm);
  const kept = Object.fromEntries(Object.entries(doc.hypervisor?.extra ?? {}).filter(([k]) => !OWNED_EXTRA.includes(k)));
  const last = doc.snapshots?.at(-1);
  const extra = defined({
    ...kept, ...core.extra,
    proxyPid: doc.proxy?.process.pid, proxyStartTime: doc.proxy?.process.startTime,
    lastSnapshot: last && defined({ path: last.path, createdAt: last.createdAt, vmmVersion: last.vmmVersion, sourceVmDir: last.sourceVmDir }),
  });
  const { pid: _p, pidStartTime: _s, virtiofsdPid: _v, apiSocket: _a, assetsVersion: _av, extra: _e, ...others } = doc.hypervisor ?? {};
  return { ...doc, hypervisor: { ...others, ...core, extra } };
}
