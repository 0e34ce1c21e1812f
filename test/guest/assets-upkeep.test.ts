import { afterAll, describe, expect, test } from "vitest";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { verifyGuestAssets, verifiedCacheFile, resolveGuestAssets } from "../../lib/guest/index.ts";
import { makeBusyboxBundle } from "../helpers/bundle.ts";
import { BUN, DIST_HUSK, REPO, husk } from "../helpers/husk.ts";

// What keeps guest assets safe across upgrades: `husk gc --assets` removes only
// versions no sandbox booted, and a damaged file is refused before a VM boots.

const work = mkdtempSync(join(tmpdir(), "husk-assets-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

// A version directory with a kernel, an initrd and a manifest that matches them.
function fakeVersion(guestDir: string, version: string, builtAt: string, huskCommit = "test"): string {
  const dir = join(guestDir, version);
  mkdirSync(dir, { recursive: true });
  const file = (path: string, text: string) => {
    const data = new TextEncoder().encode(text);
    writeFileSync(join(dir, path), data);
    return { path, sha256: sha256(data), size: data.length };
  };
  const manifest = {
    format: 1, version, builtAt, huskVersion: "0.0.0", huskCommit, kernelRelease: "6.1.0-test",
    cmdline: "quiet", agent: "share", packages: [], modules: [],
    files: { kernel: file("vmlinux", `kernel of ${version}`.repeat(100)), initrd: file("initrd.cpio", `initrd of ${version}`) },
  };
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(manifest));
  return dir;
}

function sandboxDoc(root: string, id: string, fixture: string): void {
  mkdirSync(join(root, id), { recursive: true });
  copyFileSync(join(import.meta.dirname, "..", "fixtures", "persist", fixture), join(root, id, "persist.json"));
}

describe("husk gc --assets", () => {
  const guest = join(work, "guest");
  const root = join(work, "root");
  // 2025.03.01-1: booted by a format 1.0 sandbox; 2026.12.01-1: by a 1.1 one;
  // 2024.01.01-1: named by a document this husk cannot read (a newer major).
  for (const [v, at] of [["2022.01.01-1", "2022"], ["2024.01.01-1", "2024"], ["2025.03.01-1", "2025"], ["2026.12.01-1", "2026"], ["2027.01.01-1", "2027"], ["2023.01.01-1", "2023"]])
    fakeVersion(guest, v!, `${at}-01-01T00:00:00.000Z`);
  sandboxDoc(root, "full.sandbox_01", "1.0/all-sections.json");
  sandboxDoc(root, "vm1", "1.1/qemu-proxy.json");
  mkdirSync(join(root, "future"));
  writeFileSync(join(root, "future", "persist.json"), JSON.stringify({ formatVersion: "2.0", id: "future", machine: { assets: "2024.01.01-1" } }));
  const gc = (...args: string[]) => husk(["--root", root, "gc", "--assets", ...args], { env: { HUSK_GUEST_DIR: guest } });

  test("--dry-run says why each version stays or would go, and removes nothing", () => {
    const r = gc("--dry-run");
    expect(r.stderr).toBe("");
    expect(r.stdout.trim().split("\n")).toEqual([
      "kept assets 2027.01.01-1: what new sandboxes boot",
      "kept assets 2026.12.01-1: booted by sandbox vm1",
      "kept assets 2025.03.01-1: booted by sandbox full.sandbox_01",
      "kept assets 2024.01.01-1: booted by sandbox future",
      "kept assets 2023.01.01-1: no sandbox uses it",
      "kept assets 2022.01.01-1: no sandbox uses it",
    ]);
    expect(readdirSync(guest).length).toBe(6);
  });

  test("removes the versions no sandbox booted, keeps the rest; the documents stay as they were", () => {
    const r = gc("--json");
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).filter((e: { removed: boolean }) => e.removed).map((e: { version: string }) => e.version)).toEqual(["2023.01.01-1", "2022.01.01-1"]);
    expect(readdirSync(guest).sort()).toEqual(["2024.01.01-1", "2025.03.01-1", "2026.12.01-1", "2027.01.01-1"]);
    expect(readdirSync(root).sort()).toEqual(["full.sandbox_01", "future", "vm1"]);
  });
});

describe("husk gc --assets and VM templates", () => {
  const guest = join(work, "guest-templates");
  const root = join(work, "root-templates");
  fakeVersion(guest, "2026.12.01-1", "2026-12-01T00:00:00.000Z");
  fakeVersion(guest, "2027.01.01-1", "2027-01-01T00:00:00.000Z");
  const gc = (...args: string[]) => husk(["--root", root, "gc", "--assets", ...args], { env: { HUSK_GUEST_DIR: guest } });
  const v = husk(["--version"]).stdout;
  const thisHusk = `${/husk version (\S+)/.exec(v)![1]} ${/commit: (\S+)/.exec(v)![1]}`;
  const template = (key: string, inputs: object) => {
    mkdirSync(join(guest, ".templates", key), { recursive: true });
    writeFileSync(join(guest, ".templates", key, "husk-template.json"), JSON.stringify({ key, inputs }));
    writeFileSync(join(guest, ".templates", key, "vm.state"), "state");
    writeFileSync(join(guest, ".templates", `${key}.lock`), "");
  };
  template("aaaa", { husk: thisHusk, assets: "2027.01.01-1" });
  template("bbbb", { husk: thisHusk, assets: "2026.12.01-1" });
  template("cccc", { husk: "0.1.0 0123456789ab", assets: "2027.01.01-1" });

  test("templates another husk made, or made from assets new sandboxes do not boot, go; the current one stays", () => {
    const dry = gc("--dry-run");
    expect(dry.stdout).toContain("kept VM template bbbb: made from assets 2026.12.01-1\n");
    expect(readdirSync(join(guest, ".templates")).length).toBe(6);
    const r = gc();
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split("\n").filter((l) => l.includes("VM template"))).toEqual([
      "kept VM template aaaa: what new sandboxes restore",
      "removed VM template bbbb: made from assets 2026.12.01-1",
      "removed VM template cccc: made by husk 0.1.0 0123456789ab",
    ]);
    expect(readdirSync(join(guest, ".templates")).sort()).toEqual(["aaaa", "aaaa.lock"]);
  });
});

describe("guest asset verification before a boot", () => {
  const guest = join(work, "verify");
  const dir = fakeVersion(guest, "v1", "2026-01-01T00:00:00.000Z");
  const assets = () => resolveGuestAssets(guest, "v1");

  test("intact files pass and are remembered; a file changed afterwards is still refused by name, with both checksums", () => {
    verifyGuestAssets(assets(), verifiedCacheFile(guest));
    expect(Object.keys(JSON.parse(readFileSync(verifiedCacheFile(guest), "utf8"))).sort()).toEqual([join(dir, "initrd.cpio"), join(dir, "vmlinux")]);
    const kernel = join(dir, "vmlinux");
    const text = readFileSync(kernel, "utf8") as string;
    const bad = "X" + text.slice(1); // same size
    writeFileSync(kernel, bad);
    const expected = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")).files.kernel.sha256;
    expect(() => verifyGuestAssets(assets(), verifiedCacheFile(guest))).toThrow(
      `guest asset file ${kernel} (assets v1) is corrupted: its sha256 is ${sha256(new TextEncoder().encode(bad))}, its manifest says ${expected}; nothing was booted`,
    );
    writeFileSync(kernel, text.slice(1));
    expect(() => verifyGuestAssets(assets(), verifiedCacheFile(guest))).toThrow(`guest asset file ${kernel} (assets v1) has ${text.length - 1} bytes, its manifest says ${text.length}`);
    writeFileSync(kernel, text);
    expect(() => verifyGuestAssets(assets(), verifiedCacheFile(guest))).not.toThrow();
  });

  test("the qemu driver refuses to boot it: one line on stderr naming the file", () => {
    writeFileSync(join(dir, "initrd.cpio"), "tampered!!!!!!!!!!!!!!!!!!!!!!!!!".slice(0, "initrd of v1".length));
    const bundle = makeBusyboxBundle(join(work, "bundle"), { args: ["true"] });
    const r = husk(["--root", join(work, "vroot"), "--hypervisor", "qemu", "create", "-b", bundle, "c1"], { env: { HUSK_GUEST_DIR: guest, HUSK_QEMU: "/bin/true" } });
    expect(r.status).not.toBe(0);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(`guest asset file ${join(dir, "initrd.cpio")} (assets v1) is corrupted`);
    expect(existsSync(join(work, "vroot")) ? readdirSync(join(work, "vroot")) : []).toEqual([]); // nothing of c1 left
  });
});

describe("the asset version a new sandbox boots", () => {
  const guest = join(work, "choice");
  const bin = join(work, "husk-built");
  copyFileSync(DIST_HUSK, bin); // dist/husk may be rebuilt meanwhile
  const commit = JSON.parse(spawnSync(bin, ["version", "--json"], { encoding: "utf8" }).stdout).commit as string;
  fakeVersion(guest, "own", "2026-01-01T00:00:00.000Z", commit);
  fakeVersion(guest, "newer-release", "2027-01-01T00:00:00.000Z", "0123456789ab");
  const chosen = (cmd: string[]) => {
    const r = spawnSync(cmd[0]!, [...cmd.slice(1), "--root", join(work, "choice-root"), "gc", "--assets", "--dry-run"], {
      encoding: "utf8", env: { ...process.env, HUSK_CONFIG: "/dev/null", HUSK_GUEST_DIR: guest },
    });
    return r.stdout.trim().split("\n").find((l) => l.endsWith("what new sandboxes boot"));
  };

  test("a built husk boots the newest assets it built itself, not a newer release's kept after a rollback", () => {
    expect(chosen([bin])).toBe("kept assets own: what new sandboxes boot");
  });

  test("without assets of its own (a source run, an upgrade of the binary alone) it boots the newest", () => {
    expect(chosen([BUN, join(REPO, "cmd", "husk.ts")])).toBe("kept assets newer-release: what new sandboxes boot");
  });
});

