import { describe, expect, test } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FORMATS, FormatChain, type SandboxDoc } from "../../lib/persist/index.ts";
import { SandboxV1 } from "../../lib/persist/v1.ts";

// Format 1.1 is a minor of 1.0: a 1.0 reader (release 0.1.0) reads, keeps and
// writes back 1.1 documents, and finds in `hypervisor` what it reads there;
// the 1.0 -> 1.1 migration rebuilds the typed sections from what it wrote.

const FIXTURES = join(import.meta.dirname, "..", "fixtures", "persist");
const fixture = (version: string, name: string) => JSON.parse(readFileSync(join(FIXTURES, version, name), "utf8"));
const NAMES_1_1 = readdirSync(join(FIXTURES, "1.1")).filter((n) => n.endsWith(".json"));
const NAMES_1_0 = readdirSync(join(FIXTURES, "1.0")).filter((n) => n.endsWith(".json"));

// What release 0.1.0 reads and writes: the 1.0 chain alone.
const OLD = new FormatChain<Record<string, unknown>>([{ version: "1.0", schema: SandboxV1 }]);
const origin = (id: string) => ({ sandboxId: id, where: `fixture ${id}` });
const decode = (raw: unknown) => FORMATS.decode(raw, origin((raw as { id: string }).id));

// A 1.0 release's save: its own version, everything else as it read it.
const writtenByOld = (doc: Record<string, unknown>): Record<string, unknown> => ({ ...OLD.decode(doc, origin(String(doc.id))), formatVersion: "1.0" });

describe.each(NAMES_1_1)("1.1 fixture %s", (name) => {
  const raw = fixture("1.1", name);

  test("a 1.0 reader reads it and keeps every 1.1 section", () => {
    const asOld = OLD.decode(raw, origin(raw.id));
    for (const key of ["vm", "proxy", "snapshots", "network"]) expect(asOld[key]).toEqual(raw[key]);
  });

  test("its 1.0 hypervisor section says what 0.1.0 needs to find the VM, the agent and the proxy", () => {
    const doc = decode(raw);
    if (!doc.vm) return expect(doc.hypervisor).toBeUndefined();
    const h = doc.hypervisor!;
    const main = doc.vm.driver === "local" ? doc.vm.agent : doc.vm.vmm;
    expect({ driver: h.driver, vmDir: h.vmDir, pid: h.pid, pidStartTime: h.pidStartTime }).toEqual({
      driver: doc.vm.driver, vmDir: doc.vm.dir, pid: main?.pid, pidStartTime: main?.startTime,
    });
    expect(h.extra?.proxyPid).toBe(doc.proxy?.process.pid);
    if (doc.vm.driver === "qemu") {
      expect(h.apiSocket).toBe(doc.vm.qmpSocket);
      expect(h.virtiofsdPid).toBe(doc.vm.virtiofsd?.process.pid);
      expect(h.extra?.virtiofsdStartTime).toBe(doc.vm.virtiofsd?.process.startTime);
    }
    if (doc.vm.driver === "clh") {
      expect(h.extra?.pidStartTime).toBe(doc.vm.vmm?.startTime); // where 0.1.0's clh driver reads it
      expect(h.agent).toEqual({ kind: "hybrid-vsock", path: doc.vm.vsockSocket, port: doc.vm.agentPort });
      expect((h.extra?.lastSnapshot as { path?: string })?.path).toBe(doc.snapshots?.at(-1)?.path);
    }
  });

  test("after a 1.0 release changed and wrote it, the typed sections are read back unchanged", () => {
    const old = writtenByOld(raw);
    old.state = "stopped";
    const back = decode(JSON.parse(JSON.stringify(old)));
    expect(back.state).toBe("stopped");
    expect(back.vm).toEqual(raw.vm);
    expect(back.proxy).toEqual(raw.proxy);
    expect(back.snapshots).toEqual(raw.snapshots);
  });
});

describe("migration 1.0 -> 1.1", () => {
  test.each(NAMES_1_0)("%s: typed sections from the 1.0 hypervisor section, which stays as written", (name) => {
    const raw = fixture("1.0", name);
    const doc = decode(raw);
    expect(doc.formatVersion).toBe(FORMATS.current); // through 1.1 to the newest minor
    if (!raw.hypervisor) return expect(doc.vm).toBeUndefined();
    expect(doc.vm?.driver).toBe(raw.hypervisor.driver);
    expect(doc.vm?.dir).toBe(raw.hypervisor.vmDir);
    for (const [k, v] of Object.entries(raw.hypervisor as Record<string, unknown>))
      if (k !== "extra") expect((doc.hypervisor as Record<string, unknown>)[k], `hypervisor.${k}`).toEqual(v);
    expect(doc.hypervisor?.extra).toMatchObject(raw.hypervisor.extra ?? {});
  });

  test("a clh VMM's start time is found where 0.1.0 wrote it (extra), so gc cannot take a reused pid for it", () => {
    const raw = fixture("1.0", "all-sections.json");
    const legacy = { ...raw, hypervisor: { ...raw.hypervisor, pidStartTime: undefined, extra: { ...raw.hypervisor.extra, pidStartTime: 4242 } } };
    const doc = decode(JSON.parse(JSON.stringify(legacy)));
    expect(doc.vm?.driver === "clh" && doc.vm.vmm).toEqual({ pid: raw.hypervisor.pid, startTime: 4242 });
  });

  test("a VM record that names another VM than hypervisor (a 1.0 release restored the sandbox) is rebuilt", () => {
    const current = decode(fixture("1.1", "qemu-proxy.json"));
    const old = writtenByOld(current as unknown as Record<string, unknown>) as unknown as SandboxDoc;
    old.hypervisor = { ...old.hypervisor!, pid: 9999, pidStartTime: 1, vmDir: "/run/husk/elsewhere", extra: { ...old.hypervisor!.extra, proxyPid: 9998 } };
    const back = decode(JSON.parse(JSON.stringify(old)));
    expect(back.vm).toMatchObject({ driver: "qemu", dir: "/run/husk/elsewhere", vmm: { pid: 9999, startTime: 1 } });
    expect(back.proxy?.process.pid).toBe(9998);
  });
});
