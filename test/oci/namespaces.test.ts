import { afterAll, describe, expect, test } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { expectAgentHoldsOnly } from "../helpers/guest.ts";
import { vmEnv, vmSkipReason } from "../qemu/assets.ts";

// Joining another container's namespace by path, as CRI does for a pod: the
// path names the pod sandbox container by the pid husk published (its
// shim's); the joined container must share that container's namespaces, with
// runc (local) and in a VM alike. In a VM a host namespace cannot be joined.

const work = mkdtempSync(join(tmpdir(), "husk-ns-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const SANDBOX = { "io.kubernetes.cri.container-type": "sandbox" };
const joining = (sandbox: string) => ({ "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": sandbox });

function bundle(name: string, annotations: Record<string, string>, edit: (spec: { hostname?: string; linux: { namespaces: { type: string; path?: string }[] } }) => void): string {
  const b = makeBusyboxBundle(join(work, name), { args: ["sleep", "300"] });
  const spec = JSON.parse(readFileSync(join(b, "config.json"), "utf8"));
  spec.annotations = annotations;
  edit(spec);
  writeFileSync(join(b, "config.json"), JSON.stringify(spec));
  return b;
}

// A joining container sets no hostname of its own (runc would set it in the
// shared namespace): the pod's is the sandbox container's.
const joinPaths = (pid: number, types: string[]) => (spec: { hostname?: string; linux: { namespaces: { type: string; path?: string }[] } }) => {
  delete spec.hostname;
  spec.linux.namespaces = spec.linux.namespaces.map((n) => (types.includes(n.type) ? { type: n.type, path: `/proc/${pid}/ns/${n.type}` } : n));
};

describe.each(["local", "qemu"] as const)("a pod's namespaces with the %s driver", (driver) => {
  const skip = driver === "qemu" ? vmSkipReason() : undefined;

  test.skipIf(!!skip)("a container joins the sandbox container's ipc and uts namespaces by path; a host namespace is refused in a VM", async () => {
    let cli = new Cli();
    if (driver === "qemu") {
      cli = new Cli(vmEnv());
    }
    const [a, b, c] = [`nsa-${driver}`, `nsb-${driver}`, `nsc-${driver}`];
    try {
      cli.ok(["create", "--bundle", bundle(a, SANDBOX, (s) => (s.hostname = "pod-host")), a], { stdioFile: cli.out });
      cli.ok(["start", a]);
      const pid = cli.state(a).pid;
      cli.ok(["create", "--bundle", bundle(b, joining(a), joinPaths(pid, ["ipc", "uts"])), b], { stdioFile: cli.out });
      cli.ok(["start", b]);
      const view = (id: string) => cli.ok(["exec", id, "sh", "-c", "for n in ipc uts mnt; do readlink /proc/self/ns/$n; done; hostname"]).trim().split("\n");
      const [ipcA, utsA, mntA, hostA] = view(a);
      const [ipcB, utsB, mntB, hostB] = view(b);
      expect({ ipc: ipcB, uts: utsB, host: hostB }).toEqual({ ipc: ipcA, uts: utsA, host: "pod-host" });
      expect(hostA).toBe("pod-host");
      expect(mntB).not.toBe(mntA); // only what was asked is shared
      if (driver === "qemu") {
        const host = cli.run(["create", "--bundle", bundle(c, joining(a), joinPaths(process.pid, ["ipc"])), c], { stdioFile: cli.out });
        expect(host.status).not.toBe(0);
        expect(cli.output(cli.out)).toContain(`husk: cannot join host namespace /proc/${process.pid}/ns/ipc (ipc) from a VM sandbox`);
        expect(cli.run(["state", c]).status).not.toBe(0);
        expect(cli.state(b).status).toBe("running"); // the pod is unharmed
        expectAgentHoldsOnly(cli, a, [a, b], true);
      }
    } finally {
      for (const id of [c, b, a]) cli.run(["delete", "--force", id]);
    }
    await until(() => processesUsing(cli.root).length === 0, 30_000, "nothing left running");
    expect(cli.leftovers().filter((n) => n !== "qemu")).toEqual([]);
  }, 300_000);
});
