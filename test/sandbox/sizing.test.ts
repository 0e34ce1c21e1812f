import { describe, expect, test } from "vitest";
import { availableParallelism } from "node:os";
import { loadSettings } from "../../lib/config/index.ts";
import { defaultSpec, type Spec } from "../../lib/oci/index.ts";
import { checkFitsVm, vmSize } from "../../lib/sandbox/sizing.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { Cli } from "../helpers/cli.ts";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const MiB = 1024 * 1024;
const settings = loadSettings({}, { HUSK_CONFIG: "/dev/null" });
const spec = (resources: Record<string, unknown>, annotations?: Record<string, string>): Spec => ({
  ...defaultSpec(),
  linux: { resources },
  ...(annotations ? { annotations } : {}),
});

describe("the VM a container gets", () => {
  test("its memory limit plus the overhead, at least the minimum; the default without a limit", () => {
    expect(vmSize(settings, spec({}))).toEqual({ memoryMiB: 256, cpus: 1 });
    expect(vmSize(settings, spec({ memory: { limit: 1024 * MiB } })).memoryMiB).toBe(1024 + 192);
    expect(vmSize(settings, spec({ memory: { limit: 16 * MiB } })).memoryMiB).toBe(256);
    const configured = { ...settings, vmMemoryMiB: 384, vmMemoryOverheadMiB: 100, vmMinMemoryMiB: 300, vmCpus: 2 };
    expect(vmSize(configured, spec({}))).toEqual({ memoryMiB: 384, cpus: 2 });
    expect(vmSize(configured, spec({ memory: { limit: 512 * MiB } })).memoryMiB).toBe(612);
  });

  test("vCPUs from the CPU quota or the cpuset, within the host's CPUs; annotations win", () => {
    const host = availableParallelism();
    expect(vmSize(settings, spec({ cpu: { quota: 150_000, period: 100_000 } })).cpus).toBe(Math.min(2, host));
    expect(vmSize(settings, spec({ cpu: { cpus: "0" } })).cpus).toBe(1);
    expect(vmSize(settings, spec({}, { "io.husk.vm.memory": "1g", "io.husk.vm.cpus": "1" }))).toEqual({ memoryMiB: 1024, cpus: 1 });
    expect(vmSize(settings, spec({}, { "io.husk.vm.memory": "512" })).memoryMiB).toBe(512);
  });

  test("bad values are refused naming the field", () => {
    const refused = (s: Spec, message: RegExp) => expect(() => vmSize(settings, s)).toThrow(message);
    refused(spec({}, { "io.husk.vm.memory": "lots" }), /^annotation io\.husk\.vm\.memory: "lots" is not a size/);
    refused(spec({}, { "io.husk.vm.memory": "64m" }), /^annotation io\.husk\.vm\.memory: 64 MiB is below the 256 MiB a VM needs$/);
    refused(spec({ memory: { limit: 1024 * MiB } }, { "io.husk.vm.memory": "1g" }), /cannot hold linux\.resources\.memory\.limit \(1024 MiB\)/);
    refused(spec({ memory: { limit: 1024 * 1024 * MiB } }), /^linux\.resources\.memory\.limit: a VM of \d+ MiB is more than this host's/);
    refused(spec({}, { "io.husk.vm.cpus": "two" }), /^annotation io\.husk\.vm\.cpus: "two" is not a number of vCPUs/);
    refused(spec({}, { "io.husk.vm.cpus": "4096" }), /^annotation io\.husk\.vm\.cpus: 4096 is more than this host's \d+ CPUs$/);
  });
});

describe("a Kubernetes pod's VM", () => {
  const pod = (annotations: Record<string, string>, resources: Record<string, unknown> = {}) =>
    spec(resources, { "io.kubernetes.cri.container-type": "sandbox", ...annotations });

  test("sized from the pod's limits containerd passes on its sandbox container", () => {
    const limits = { "io.kubernetes.cri.sandbox-memory": String(512 * MiB), "io.kubernetes.cri.sandbox-cpu-quota": "150000", "io.kubernetes.cri.sandbox-cpu-period": "100000" };
    expect(vmSize(settings, pod(limits))).toEqual({ memoryMiB: 512 + 192, cpus: Math.min(2, availableParallelism()) });
    // No limits in the pod ("0"): the default VM.
    expect(vmSize(settings, pod({ "io.kubernetes.cri.sandbox-memory": "0", "io.kubernetes.cri.sandbox-cpu-quota": "0" }))).toEqual({ memoryMiB: 256, cpus: 1 });
    // A pod's own annotation wins, and must hold the pod's limits.
    expect(vmSize(settings, pod({ ...limits, "io.husk.vm.memory": "1g" })).memoryMiB).toBe(1024);
    expect(() => vmSize(settings, pod({ ...limits, "io.husk.vm.memory": "600m" }))).toThrow(
      /^annotation io\.husk\.vm\.memory: 600 MiB cannot hold annotation io\.kubernetes\.cri\.sandbox-memory \(the pod's memory limits\) \(512 MiB\)/,
    );
    // Only a sandbox container stands for its pod.
    expect(vmSize(settings, spec({}, { "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-memory": String(512 * MiB) }))).toEqual({ memoryMiB: 256, cpus: 1 });
  });

  test("more than the host has, a value that is no number, an io.husk annotation husk does not know: refused by name", () => {
    expect(() => vmSize(settings, pod({ "io.kubernetes.cri.sandbox-memory": String(1024 * 1024 * MiB) }))).toThrow(
      /^annotation io\.kubernetes\.cri\.sandbox-memory \(the pod's memory limits\): a VM of \d+ MiB is more than this host's \d+ MiB$/,
    );
    expect(() => vmSize(settings, pod({ "io.kubernetes.cri.sandbox-memory": "lots" }))).toThrow(/^annotation io\.kubernetes\.cri\.sandbox-memory: "lots" is not a number$/);
    expect(() => vmSize(settings, spec({}, { "io.husk.vm.memroy": "1g" }))).toThrow(
      /^annotation io\.husk\.vm\.memroy is not one husk knows \(io\.husk\.vm\.memory, io\.husk\.vm\.cpus\)$/,
    );
  });

  test("a container joining the VM must fit beside the VM's own overhead", () => {
    expect(() => checkFitsVm(settings, spec({ memory: { limit: 64 * MiB } }), 256, "container b")).not.toThrow();
    expect(() => checkFitsVm(settings, spec({}), 256, "container b")).not.toThrow();
    expect(() => checkFitsVm(settings, spec({ memory: { limit: 128 * MiB } }), 256, "container b")).toThrow(
      /^container b: linux\.resources\.memory\.limit \(128 MiB\) does not fit in the pod's VM of 256 MiB beside its own 192 MiB; /,
    );
  });
});

test("create refuses a bad size in one line and leaves nothing behind", () => {
  const cli = new Cli();
  const b = makeBusyboxBundle(join(mkdtempSync(join(tmpdir(), "husk-size-")), "bundle"), { args: ["true"] });
  const config = JSON.parse(readFileSync(join(b, "config.json"), "utf8"));
  writeFileSync(join(b, "config.json"), JSON.stringify({ ...config, annotations: { "io.husk.vm.memory": "64m" } }));
  const r = cli.run(["create", "--bundle", b, "small"]);
  expect(r.status).not.toBe(0);
  expect(r.stderr).toBe("husk: annotation io.husk.vm.memory: 64 MiB is below the 256 MiB a VM needs\n");
  expect(cli.leftovers()).toEqual([]);
  expect(cli.indexEntries()).toEqual([]);
});
