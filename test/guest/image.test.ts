import { describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HuskError } from "../../lib/core/index.ts";
import { extractVmlinux, guestModules, listGuestVersions, moduleLine, resolveGuestAssets, resolveModules, writeCpio } from "../../lib/guest/index.ts";
import { decompressLegacyLz4 } from "../../lib/guest/lz4.ts";
import { findExecutable } from "../../lib/hypervisor/index.ts";

const tmp = (p: string) => mkdtempSync(join(tmpdir(), `husk-guest-${p}-`));
const LZ4 = findExecutable("lz4");
const BUSYBOX = findExecutable("busybox");

// Varied but compressible: repeats at several distances exercise overlapping matches.
function sample(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = i % 97 < 60 ? out[Math.max(0, i - 1 - (x % 300))]! : x >>> 24;
  }
  return out;
}

describe("LZ4 kernel payloads", () => {
  test.skipIf(!LZ4)("decodes what the lz4 tool writes in the kernel's legacy format, across blocks", () => {
    const data = sample(9 << 20); // more than one 8 MiB legacy block
    const r = spawnSync("lz4", ["-l", "-9", "-c"], { input: data, maxBuffer: 64 << 20 });
    expect(r.status).toBe(0);
    const size = Buffer.alloc(4);
    size.writeUInt32LE(data.length); // the kernel build appends the size, as here
    const out = decompressLegacyLz4(Buffer.concat([r.stdout, size]));
    expect(out.length).toBe(data.length);
    expect(Buffer.compare(Buffer.from(out), Buffer.from(data))).toBe(0);
  });

  test("rejects what is not a bzImage or not LZ4, naming the file", () => {
    expect(() => extractVmlinux(new Uint8Array(4096), "vmlinuz-x")).toThrow(/vmlinuz-x is not a bzImage/);
    expect(() => decompressLegacyLz4(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]))).toThrow(HuskError);
  });

  test("an ELF image passes through unchanged", () => {
    const elf = new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
    expect(extractVmlinux(elf)).toBe(elf);
  });
});

describe.skipIf(!BUSYBOX)("initramfs cpio", () => {
  test("busybox cpio unpacks files, modes, directories and symlinks as written", () => {
    const data = sample(5001);
    const archive = writeCpio([
      { kind: "dir", path: "etc" },
      { kind: "file", path: "etc/odd-size", data, mode: 0o640 },
      { kind: "file", path: "init", data: new TextEncoder().encode("#!/bin/sh\n"), mode: 0o755 },
      { kind: "symlink", path: "etc/link", target: "/etc/odd-size" },
    ]);
    const dir = tmp("cpio");
    const r = spawnSync("busybox", ["cpio", "-i", "-d"], { cwd: dir, input: archive });
    expect(r.status).toBe(0);
    expect(Buffer.compare(readFileSync(join(dir, "etc/odd-size")), Buffer.from(data))).toBe(0);
    expect(readFileSync(join(dir, "init"), "utf8")).toBe("#!/bin/sh\n");
    expect(readlinkSync(join(dir, "etc/link"))).toBe("/etc/odd-size");
    const ls = spawnSync("stat", ["-c", "%a %n", "init", "etc/odd-size"], { cwd: dir, encoding: "utf8" });
    expect(ls.stdout).toBe("755 init\n640 etc/odd-size\n");
  });
});

// A fake module tree: each .ko carries only the .modinfo strings we read.
function fakeModules(mods: Record<string, string[]>, builtin: string[] = []): string {
  const dir = tmp("mods");
  for (const [name, deps] of Object.entries(mods)) {
    const sub = join(dir, "kernel", name.startsWith("virtio") ? "drivers/virtio" : "fs");
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, `${name.replace(/_/g, "-")}.ko`), `\x7fELF junk\0name=${name}\0depends=${deps.join(",")}\0vermagic=x\0`);
  }
  writeFileSync(join(dir, "modules.builtin"), builtin.map((b) => `kernel/x/${b}.ko\n`).join(""));
  return dir;
}

describe("kernel modules", () => {
  test("dependencies come before the modules that need them, each once", () => {
    const dir = fakeModules({ virtio_ring: [], virtio: ["virtio_ring"], virtio_fs: ["virtio", "fuse"], fuse: [], virtio_mmio: ["virtio", "virtio_ring"] });
    const order = resolveModules(dir, ["virtio_fs", "virtio_mmio"]).map((m) => m.name);
    expect(order).toEqual(["virtio_ring", "virtio", "fuse", "virtio_fs", "virtio_mmio"]);
    expect(order.indexOf("virtio_ring")).toBeLessThan(order.indexOf("virtio"));
  });

  test("built-in modules are not loaded; a missing one is named with what needs it", () => {
    const dir = fakeModules({ virtio_fs: ["fuse", "virtio"], virtio: [] }, ["fuse"]);
    expect(resolveModules(dir, ["virtio_fs"]).map((m) => m.name)).toEqual(["virtio", "virtio_fs"]);
    const dir2 = fakeModules({ virtio_fs: ["fuse"] });
    expect(() => resolveModules(dir2, ["virtio_fs"])).toThrow(/kernel module fuse \(needed by virtio_fs\) is not in/);
  });

  test("a device's own modules come last, tagged with its virtio id, without what the rest already loads", () => {
    const base = { virtio_ring: [], virtio: ["virtio_ring"], virtio_mmio: ["virtio"], virtio_pci: ["virtio"], virtio_console: ["virtio"], fuse: [], virtiofs: ["fuse", "virtio"], overlay: [] };
    const dir = fakeModules({ ...base, vsock: [], vmw_vsock_virtio_transport_common: ["vsock", "virtio"], vmw_vsock_virtio_transport: ["vmw_vsock_virtio_transport_common"], failover: [], net_failover: ["failover"], virtio_net: ["net_failover", "virtio"] });
    const lines = guestModules(dir).map((m) => `${m.name}${m.device ? ` ${m.device}` : ""}`);
    expect(lines.slice(-6)).toEqual([
      "vsock 0x0013", "vmw_vsock_virtio_transport_common 0x0013", "vmw_vsock_virtio_transport 0x0013",
      "failover 0x0001", "net_failover 0x0001", "virtio_net 0x0001",
    ]);
    expect(lines.filter((l) => l.startsWith("virtio ")).length + lines.filter((l) => l === "virtio").length).toBe(1);
    expect(moduleLine(guestModules(dir).at(-1)!)).toMatch(/^kernel\/drivers\/virtio\/virtio-net\.ko 0x0001$/);
  });
});

function fakeVersion(root: string, version: string, builtAt: string): void {
  const sha = "0".repeat(64);
  mkdirSync(join(root, version), { recursive: true });
  const manifest = {
    format: 1, version, builtAt, huskVersion: "0.1.0", huskCommit: "abc", kernelRelease: "6.1.0-x", cmdline: "quiet",
    agent: "share", files: { kernel: { path: "vmlinux", sha256: sha, size: 1 }, initrd: { path: "initrd.cpio", sha256: sha, size: 1 } },
    packages: [], modules: [],
  };
  writeFileSync(join(root, version, "manifest.json"), JSON.stringify(manifest));
}

describe("asset versions", () => {
  test("the newest build is used unless a version is named", () => {
    const root = tmp("versions");
    fakeVersion(root, "k-old", "2024-01-01T00:00:00Z");
    fakeVersion(root, "k-new", "2025-06-01T00:00:00Z");
    mkdirSync(join(root, ".cache"));
    expect(listGuestVersions(root).map((m) => m.version)).toEqual(["k-new", "k-old"]);
    expect(resolveGuestAssets(root).version).toBe("k-new");
    const old = resolveGuestAssets(root, "k-old");
    expect(old.kernel).toBe(join(root, "k-old", "vmlinux"));
    expect(old.cmdline).toBe("quiet");
  });

  test("a damaged manifest does not hide good versions; naming it gives a clear error", () => {
    const root = tmp("damaged");
    fakeVersion(root, "good", "2024-01-01T00:00:00Z");
    mkdirSync(join(root, "bad"));
    writeFileSync(join(root, "bad", "manifest.json"), "{ not json");
    expect(resolveGuestAssets(root).version).toBe("good");
    expect(() => resolveGuestAssets(root, "bad")).toThrow(/cannot read guest manifest .*bad\/manifest.json/);
  });

  test("no assets, unknown and unsafe version names are refused by name", () => {
    const root = tmp("empty");
    expect(() => resolveGuestAssets(root)).toThrow(`no guest assets in ${root}: run 'husk guest build' first`);
    expect(() => resolveGuestAssets(root, "nope")).toThrow(/guest asset version nope not found/);
    expect(() => resolveGuestAssets(root, "../etc")).toThrow(/invalid guest asset version id/);
  });
});
