import { afterAll, describe, expect, test } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inContainerView } from "../../lib/sandbox/shim-view.ts";
import { makeBusyboxRootfs } from "../helpers/bundle.ts";

// podman enters the shim's mount namespace as the container's (`podman cp`,
// `podman top`). What it finds there is the container's bind mounts over an
// empty read-only root, never the host's root; the shim itself still sees
// the host. Making a mount namespace needs root.
const notRoot = process.getuid?.() !== 0 ? "needs root (unshare --mount)" : "";
if (notRoot) console.log(`test/sandbox/shim-view: skipped: ${notRoot}`);

describe.skipIf(!!notRoot)("the mount namespace a container's shim starts in", () => {
  const dir = mkdtempSync(join(tmpdir(), "husk-view-"));
  const img = makeBusyboxRootfs(join(dir, "img"));
  const data = join(dir, "data");
  mkdirSync(data);
  writeFileSync(join(data, "f"), "shared\n");
  writeFileSync(join(dir, "hosts"), "127.0.0.1 here\n");
  const bind = (destination: string, source: string, options: string[]) => ({ destination, type: "bind", source, options });
  const mounts = [
    { destination: "/proc", type: "proc", source: "proc" },
    bind("/bin", join(img, "bin"), ["bind", "ro"]),
    bind("/data", data, ["rbind", "rw"]),
    bind("/etc/hosts", join(dir, "hosts"), ["bind", "ro"]),
    bind("/../../escape", data, ["bind"]),
    bind("/gone", join(dir, "no-such-source"), ["bind"]),
    bind("/..", data, ["bind"]),
  ];
  const sandboxDir = join(dir, "sandbox");
  let pid = 0;
  afterAll(() => {
    if (pid) process.kill(pid, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  test("shows the binds (ro where asked) over an empty read-only root; the shim keeps the host's; the host's mounts are untouched", async () => {
    const argv = inContainerView(sandboxDir, { mounts, bundleDir: dir }, ["/bin/sh", "-c", "echo ready; exec sleep 60"]);
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    pid = child.pid!;
    await new Promise<void>((ok) => child.stdout!.once("data", () => ok()));
    const inView = (script: string) =>
      spawnSync("nsenter", [`--mount=/proc/${pid}/ns/mnt`, "/bin/busybox", "sh", "-c", script], { encoding: "utf8" });
    const r = inView(
      "ls /; cat /data/f /etc/hosts; echo w > /data/w; ls /escape; " +
        "touch /x || echo root-ro; (echo y > /etc/hosts) || echo hosts-ro; ls /proc | wc -l",
    );
    expect(r.stderr).toMatch(/^touch: \/x: Read-only file system\n.*Read-only file system\nls: \/proc: No such file or directory\n$/);
    expect(r.stdout.split("\n")).toEqual(["bin", "data", "escape", "etc", "shared", "127.0.0.1 here", "f", "w", "root-ro", "hosts-ro", "0", ""]);
    expect(readFileSync(join(data, "w"), "utf8")).toBe("w\n");
    // The shim's own view: the host's root, where this test's directory is.
    expect(existsSync(join(`/proc/${pid}/root`, dir, "hosts"))).toBe(true);
    expect(readlinkSync(`/proc/${pid}/ns/mnt`)).not.toBe(readlinkSync("/proc/self/ns/mnt"));
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain("husk-view");
    expect(readdirSync(join(sandboxDir, "view"))).toEqual([]);
  });
});
