import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cli, processesUsing, until } from "../helpers/cli.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { expectAgentHoldsOnly } from "../helpers/guest.ts";
import { mountsOf } from "../helpers/mountinfo.ts";
import { vmEnv, vmSkipReason } from "../qemu/assets.ts";

// What runc gives a bundle, a container in a husk VM gets too: user
// namespaces, every mount type with its options, masked and read-only paths,
// a read-only root, file binds the host rewrites, fresh namespaces, the
// container-side hooks; and what cannot work is refused by field. The local
// driver runs the same cases against runc on the host as the reference. Every
// case joins one pod per driver (one VM), and after each the agent is asked
// that nothing of the container is left in the guest.

const work = mkdtempSync(join(tmpdir(), "husk-conf-"));
chmodSync(work, 0o711); // a user-namespaced root must reach its rootfs
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Spec = {
  mounts: { destination: string; type?: string; source?: string; options?: string[] }[];
  root: { path: string; readonly?: boolean };
  hooks?: Record<string, unknown[]>;
  linux: Record<string, unknown> & { namespaces: { type: string; path?: string }[] };
  annotations?: Record<string, string>;
};

const MOUNT_OPTIONS: Record<string, string[]> = {
  "/dev/pts": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
  "/dev/mqueue": ["nosuid", "noexec", "nodev"],
  "/sys": ["nosuid", "noexec", "nodev", "ro"],
};

const squash = (s: string) => s.replace(/[ \t]+/g, " ").replace(/^ | $/gm, "");

describe.each(["local", "qemu"] as const)("runtime-spec conformance with the %s driver", (driver) => {
  const skip = driver === "qemu" ? vmSkipReason() : undefined;
  if (skip) console.log(`test/oci/conformance (qemu): skipped: ${skip}`);
  const POD = `conf-${driver}`;
  let cli: Cli;
  let seq = 0;

  function bundle(args: string[], edit: (s: Spec, rootfs: string) => void = () => {}): string {
    const dir = makeBusyboxBundle(join(work, `${driver}-${++seq}`), { args });
    const spec = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Spec;
    spec.annotations = { "io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": POD };
    edit(spec, join(dir, "rootfs"));
    writeFileSync(join(dir, "config.json"), JSON.stringify(spec));
    return dir;
  }

  const agentHoldsOnly = (ids: string[]) => expectAgentHoldsOnly(cli, POD, ids, driver === "qemu");

  // Runs a container of the pod to its end: its output, then nothing left.
  function runInPod(id: string, b: string): { stdout: string; stderr: string; status: number | null } {
    const r = cli.run(["run", "--bundle", b, id]);
    if (cli.run(["state", id]).status === 0) cli.run(["delete", "--force", id]);
    agentHoldsOnly([POD]);
    return r;
  }

  beforeAll(() => {
    if (skip) return;
    cli = driver === "qemu" ? new Cli(vmEnv()) : new Cli();
    const b = bundle(["sleep", "600"], (s) => (s.annotations = { "io.kubernetes.cri.container-type": "sandbox" }));
    cli.ok(["create", "--bundle", b, POD], { stdioFile: cli.out });
    cli.ok(["start", POD]);
  }, 600_000);

  afterAll(async () => {
    if (!cli) return;
    cli.run(["delete", "--force", POD]);
    await until(() => processesUsing(cli.root).length === 0, 30_000, "nothing left running");
    expect(cli.leftovers().filter((n) => n !== "qemu")).toEqual([]);
  }, 120_000);

  const it = test.skipIf(!!skip);

  it("a user namespace: root is the mapped uid, the image's files are nobody's, new files are root's", () => {
    const script = "cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u:%g /bin/busybox; echo x > /tmp/f && stat -c %u:%g /tmp/f";
    const b = bundle(["sh", "-c", script], (s, rootfs) => {
      s.linux.namespaces.push({ type: "user" });
      s.linux.uidMappings = [{ containerID: 0, hostID: 100_000, size: 65_536 }];
      s.linux.gidMappings = [{ containerID: 0, hostID: 100_000, size: 65_536 }];
      chmodSync(join(rootfs, "tmp"), 0o1777);
    });
    const r = runInPod(`userns-${driver}`, b);
    expect(r.stderr).toBe("");
    expect(squash(r.stdout)).toBe("0 100000 65536\n0 100000 65536\n0\n65534:65534\n0:0\n");
    expect(r.status).toBe(0);
  }, 180_000);

  it("tmpfs, proc, sysfs, mqueue and devpts are mounted with their options", () => {
    const b = bundle(["cat", "/proc/self/mountinfo"], (s) => {
      for (const m of s.mounts) if (MOUNT_OPTIONS[m.destination]) m.options = MOUNT_OPTIONS[m.destination];
      s.mounts.push({ destination: "/t", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "noexec", "size=1m", "mode=1770"] });
      s.mounts.find((m) => m.destination === "/proc")!.options = ["nosuid", "nodev", "noexec", "hidepid=2"];
    });
    const r = runInPod(`mounts-${driver}`, b);
    expect(r.status, r.stderr).toBe(0);
    const m = mountsOf(r.stdout);
    expect(m.get("/t")).toMatchObject({ type: "tmpfs", options: expect.arrayContaining(["nosuid", "nodev", "noexec"]) });
    expect(m.get("/t")!.superOptions).toEqual(expect.arrayContaining(["size=1024k", "mode=1770"]));
    expect(m.get("/proc")!.type).toBe("proc");
    expect(m.get("/proc")!.superOptions.some((o) => o === "hidepid=2" || o === "hidepid=invisible")).toBe(true);
    expect(m.get("/sys")).toMatchObject({ type: "sysfs", options: expect.arrayContaining(["ro", "nosuid"]) });
    expect(m.get("/dev/mqueue")).toMatchObject({ type: "mqueue", options: expect.arrayContaining(["nosuid", "nodev", "noexec"]) });
    expect(m.get("/dev/pts")!.type).toBe("devpts");
    expect(m.get("/dev/pts")!.superOptions).toEqual(expect.arrayContaining(["gid=5", "mode=620", "ptmxmode=666"]));
  }, 180_000);

  it("masked paths read empty, read-only paths and a read-only root refuse writes", () => {
    const script = [
      'echo "[$(cat /etc/secret)]"',
      'echo "[$(ls /etc/secretdir)]"',
      "touch /x 2>/dev/null && echo root-writable || echo root-ro",
      "(echo x > /proc/sys/kernel/domainname) 2>/dev/null && echo sys-writable || echo sys-ro",
    ].join("; ");
    const b = bundle(["sh", "-c", script], (s, rootfs) => {
      writeFileSync(join(rootfs, "etc", "secret"), "s3cret\n");
      mkdirSync(join(rootfs, "etc", "secretdir"));
      writeFileSync(join(rootfs, "etc", "secretdir", "key"), "k\n");
      s.root.readonly = true;
      s.linux.maskedPaths = ["/proc/kcore", "/etc/secret", "/etc/secretdir"];
      s.linux.readonlyPaths = ["/proc/sys"];
    });
    const r = runInPod(`masked-${driver}`, b);
    expect(r.stdout).toBe("[]\n[]\nroot-ro\nsys-ro\n");
    expect(r.status).toBe(0);
  }, 180_000);

  it("a file bind mount the host rewrites in place is seen rewritten (as podman and CRI rewrite /etc/hosts)", async () => {
    const hosts = join(work, `hosts-${driver}`);
    writeFileSync(hosts, "10.0.0.1 one\n");
    const b = bundle(["sleep", "300"], (s) => s.mounts.push({ destination: "/etc/hosts", type: "bind", source: hosts, options: ["rbind", "rprivate"] }));
    const id = `hosts-${driver}`;
    try {
      cli.ok(["create", "--bundle", b, id], { stdioFile: cli.out });
      cli.ok(["start", id]);
      expect(cli.ok(["exec", id, "cat", "/etc/hosts"])).toBe("10.0.0.1 one\n");
      writeFileSync(hosts, "10.0.0.2 two\n10.0.0.3 three\n");
      await until(() => cli.ok(["exec", id, "cat", "/etc/hosts"]) === "10.0.0.2 two\n10.0.0.3 three\n", 20_000, "the rewritten file in the container");
    } finally {
      cli.run(["delete", "--force", id]);
    }
    agentHoldsOnly([POD]);
  }, 180_000);

  it("a container gets its own pid, ipc, uts, mount and cgroup namespaces; a startContainer hook runs in them", () => {
    const ns = "for n in pid ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done";
    const b = bundle(["sh", "-c", `cat /hooked; ${ns}`], (s) => {
      s.linux.namespaces.push({ type: "cgroup" });
      s.hooks = { startContainer: [{ path: "/bin/sh", args: ["sh", "-c", "echo started in $(hostname) > /hooked"] }] };
    });
    const r = runInPod(`ns-${driver}`, b);
    expect(r.status, r.stderr).toBe(0);
    const [hooked, ...mine] = r.stdout.trim().split("\n");
    expect(hooked).toBe("started in busybox");
    const pods = cli.ok(["exec", POD, "sh", "-c", ns]).trim().split("\n");
    expect(mine).toHaveLength(5);
    mine.forEach((n, i) => expect(n, n).not.toBe(pods[i]));
  }, 180_000);

  it("what cannot work is refused by field before anything is made", () => {
    const cases: [string, (s: Spec) => void, string][] = [
      ["nosrc", (s) => s.mounts.push({ destination: "/data", type: "bind", source: "/no/such/dir", options: ["rbind"] }), "mounts[6].source: /no/such/dir does not exist"],
      ["badopt", (s) => s.mounts.push({ destination: "/t", type: "tmpfs", source: "tmpfs", options: ["nosuid", "frobnicate"] }), 'mounts[6].options: "frobnicate" is not an option of tmpfs mounts'],
      [
        "overlap",
        (s) => {
          s.linux.namespaces.push({ type: "user" });
          s.linux.uidMappings = [{ containerID: 0, hostID: 100_000, size: 1000 }, { containerID: 500, hostID: 200_000, size: 10 }];
          s.linux.gidMappings = [{ containerID: 0, hostID: 100_000, size: 1000 }];
        },
        "linux.uidMappings: ranges 0 and 1 overlap in containerID",
      ],
      ["unmapped", (s) => s.linux.namespaces.push({ type: "user" }), "linux.namespaces: a new user namespace needs linux.uidMappings and linux.gidMappings"],
      ["nohook", (s) => (s.hooks = { poststop: [{ path: "/no/such/hook" }] }), "hooks.poststop[0].path: /no/such/hook does not exist"],
    ];
    for (const [name, edit, message] of cases) {
      const id = `${name}-${driver}`;
      const r = cli.run(["create", "--bundle", bundle(["true"], edit), id]);
      expect(r.stderr.trim(), name).toBe(`husk: ${message}`);
      expect(r.status, name).not.toBe(0);
      expect(cli.run(["state", id]).status, name).not.toBe(0);
    }
    agentHoldsOnly([POD]);
  }, 180_000);

  it("a failing createContainer hook fails the create, naming the hook; nothing is left", () => {
    const id = `cchook-${driver}`;
    const b = bundle(["true"], (s) => (s.hooks = { createContainer: [{ path: "/bin/sh", args: ["sh", "-c", "echo cannot prepare >&2; exit 4"] }] }));
    const r = cli.run(["create", "--bundle", b, id]);
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^husk: cannot create container .*error running hook #0: .*exit status 4.*cannot prepare/);
    expect(cli.run(["state", id]).status).not.toBe(0);
    agentHoldsOnly([POD]);
  }, 180_000);

  it("a failing startContainer hook fails the start, naming the hook; the process never runs", () => {
    const id = `schook-${driver}`;
    const b = bundle(["sh", "-c", "echo the process ran"], (s) => (s.hooks = { startContainer: [{ path: "/bin/sh", args: ["sh", "-c", "echo cannot start >&2; exit 5"] }] }));
    try {
      cli.ok(["create", "--bundle", b, id], { stdioFile: cli.out });
      const r = cli.run(["start", id]);
      expect(r.status).not.toBe(0);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(/^husk: cannot start container .*error running hook #0: .*exit status 5.*cannot start/);
      expect(JSON.parse(cli.ok(["state", id])).status).toBe("stopped");
      expect(readFileSync(cli.out, "utf8")).not.toContain("the process ran");
      cli.ok(["delete", id]);
    } finally {
      cli.run(["delete", "--force", id]);
    }
    agentHoldsOnly([POD]);
  }, 180_000);

  it("a create the OCI runtime fails leaves nothing, in the guest or on the host", () => {
    const id = `badcwd-${driver}`;
    const b = bundle(["true"], (s) => ((s as unknown as { process: { cwd: string } }).process.cwd = "/bin/busybox"));
    const r = cli.run(["create", "--bundle", b, id]);
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^husk: .*cannot create container/);
    expect(cli.run(["state", id]).status).not.toBe(0);
    agentHoldsOnly([POD]);
    expect(JSON.parse(cli.ok(["list", "--format", "json"])).map((c: { id: string }) => c.id)).toEqual([POD]);
  }, 180_000);
});
