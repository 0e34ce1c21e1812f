import { describe, expect, test } from "vitest";
import { inGuest, parseCpuList } from "../../lib/agent/engine/guest-spec.ts";
import { defaultSpec } from "../../lib/oci/index.ts";

describe("a container's spec inside a VM", () => {
  test("a cgroup of the guest's own, a cgroup namespace and /sys/fs/cgroup; killable by the OOM killer", () => {
    const spec = { ...defaultSpec(), linux: { ...defaultSpec().linux, cgroupsPath: "system.slice:cri-containerd:x" } };
    const g = inGuest(spec, "c1", 2);
    expect(g.linux?.cgroupsPath).toBe("/husk/c1");
    expect(g.linux?.namespaces?.filter((n) => n.type === "cgroup")).toEqual([{ type: "cgroup" }]);
    expect(g.mounts?.filter((m) => m.destination === "/sys/fs/cgroup")).toHaveLength(1);
    expect(g.process?.oomScoreAdj).toBe(0);
    // What the spec already says is kept.
    const again = inGuest({ ...g, process: { ...g.process!, oomScoreAdj: 500 } }, "c1", 2);
    expect(again.linux?.namespaces).toEqual(g.linux?.namespaces);
    expect(again.mounts).toEqual(g.mounts);
    expect(again.process?.oomScoreAdj).toBe(500);
  });

  test("cpusets outside the VM, bad CPU lists, huge pages and per-device I/O limits are refused by field", () => {
    const withCpus = (cpus: string) => ({ ...defaultSpec(), linux: { resources: { cpu: { cpus } } } });
    expect(() => inGuest(withCpus("0-1"), "c", 2)).not.toThrow();
    expect(() => inGuest(withCpus("1,3"), "c", 2)).toThrow(/^linux\.resources\.cpu\.cpus: CPU 3 is outside the VM's 2 vCPUs \(0-1\)$/);
    expect(() => inGuest(withCpus("x"), "c", 2)).toThrow(/^linux\.resources\.cpu\.cpus: "x" is not a CPU list/);
    const huge = { ...defaultSpec(), linux: { resources: { hugepageLimits: [{ pageSize: "2MB", limit: 1 }] } } };
    expect(() => inGuest(huge, "c", 2)).toThrow(/^linux\.resources\.hugepageLimits: /);
    const throttled = { ...defaultSpec(), linux: { resources: { blockIO: { weight: 300, throttleReadBpsDevice: [{ major: 254, minor: 0, rate: 1 }] } } } };
    expect(() => inGuest(throttled, "c", 2)).toThrow(/^linux\.resources\.blockIO\.throttleReadBpsDevice: the host's block devices are not in husk's VMs/);
    expect(() => inGuest({ ...defaultSpec(), linux: { resources: { blockIO: { weight: 300, weightDevice: [] } } } }, "c", 2)).not.toThrow();
    expect(parseCpuList("0-2,4", "f")).toEqual([0, 1, 2, 4]);
  });
});
