import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { HuskError } from "../core/index.ts";

// The guest loads its modules with busybox insmod, which does no dependency
// resolution: we resolve here, from each module's own .modinfo "depends=" (the
// same data depmod writes into modules.dep), and hand init an ordered list.
export const GUEST_MODULES = [
  "virtio_mmio",
  "virtio_pci",
  "virtio_console",
  "fuse",
  "virtiofs",
  "overlay",
] as const;

// Modules a guest needs only when the VM has the virtio device they drive
// (virtio device ids: 1 network, 19 vsock): init loads them only then, and a
// VM without a network device (or on virtio-serial) does not pay for them.
export const DEVICE_MODULES: Record<string, readonly string[]> = {
  "0x0013": ["vsock", "vmw_vsock_virtio_transport"],
  "0x0001": ["virtio_net"],
};

export interface KernelModule {
  name: string;
  file: string; // relative to lib/modules/<release>
  depends: string[];
}

const modName = (file: string) => file.replace(/^.*\//, "").replace(/\.ko(\..*)?$/, "").replace(/-/g, "_");

function* walk(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (e.name.endsWith(".ko")) yield p;
  }
}

function dependsOf(path: string): string[] {
  const text = readFileSync(path).toString("latin1");
  const m = /\0depends=([^\0]*)\0/.exec(text);
  return m?.[1] ? m[1].split(",").filter(Boolean).map((d) => d.replace(/-/g, "_")) : [];
}

// Index of every .ko in <modulesDir> by module name.
export function indexModules(modulesDir: string): Map<string, KernelModule> {
  const index = new Map<string, KernelModule>();
  for (const path of walk(modulesDir)) {
    const name = modName(path);
    index.set(name, { name, file: relative(modulesDir, path), depends: dependsOf(path) });
  }
  return index;
}

function builtins(modulesDir: string): Set<string> {
  try {
    return new Set(readFileSync(join(modulesDir, "modules.builtin"), "utf8").split("\n").filter(Boolean).map(modName));
  } catch {
    return new Set();
  }
}

// Dependencies first; modules built into the kernel are skipped. `seen`:
// modules already listed (by an earlier call), not listed again.
export function resolveModules(modulesDir: string, wanted: readonly string[] = GUEST_MODULES, seen = new Set<string>()): KernelModule[] {
  const index = indexModules(modulesDir);
  const builtin = builtins(modulesDir);
  const order: KernelModule[] = [];
  const visit = (name: string, chain: string[]) => {
    if (seen.has(name) || builtin.has(name)) return;
    const mod = index.get(name);
    if (!mod) throw new HuskError(`kernel module ${name} (needed by ${chain.join(" <- ") || "the guest"}) is not in ${modulesDir}`);
    seen.add(name);
    for (const dep of mod.depends) visit(dep, [name, ...chain]);
    order.push(mod);
  };
  for (const name of wanted) visit(name, []);
  return order;
}

// A module the guest loads; `device`: only if the VM has this virtio device.
export type GuestModule = KernelModule & { device?: string };

// What the guest loads, in order: every module always needed, then each
// device's own, tagged with its device id (init loads those only if present).
export function guestModules(modulesDir: string): GuestModule[] {
  const seen = new Set<string>();
  const all: GuestModule[] = resolveModules(modulesDir, GUEST_MODULES, seen);
  for (const [device, wanted] of Object.entries(DEVICE_MODULES))
    all.push(...resolveModules(modulesDir, wanted, seen).map((m) => ({ ...m, device })));
  return all;
}

// A line of the guest's /etc/husk/modules: "<file>" or "<file> <device id>".
export const moduleLine = (m: GuestModule) => (m.device ? `${m.file} ${m.device}` : m.file);
