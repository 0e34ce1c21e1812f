import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { buildVmConfig, clhApi, ClhApiError, type ClhApi } from "../../lib/hypervisor/clh/index.ts";
import { readRecord, writeDoubleLauncher } from "../helpers/clh-double.ts";
import { loadChSpec } from "./spec.ts";

// The driver tests mean something only if the double holds the VMM to the
// spec's state rules; here it is driven directly, without the driver.

const dir = mkdtempSync(join(tmpdir(), "husk-clh-double-"));
const record = join(dir, "requests.jsonl");
const apiSocket = join(dir, "api.sock");
const spec = loadChSpec();
let vmm: ChildProcess;
let api: ClhApi;
let virtiofsd: Server; // just a listening socket: the double only connects

const config = buildVmConfig({
  kernel: join(dir, "vmlinux"),
  cmdline: "",
  cpus: 1,
  memoryMiB: 64,
  fs: [{ tag: "husk", socket: join(dir, "fs.sock") }],
  vsock: { cid: 3, socket: join(dir, "vsock.sock") },
});

// The status an API call failed with (0 when it succeeded).
const statusOf = (p: Promise<unknown>): Promise<number> =>
  p.then(
    () => 0,
    (e) => (e instanceof ClhApiError ? e.status : -1),
  );

beforeAll(async () => {
  writeFileSync(join(dir, "vmlinux"), "kernel");
  mkdirSync(join(dir, "snap"));
  virtiofsd = createServer((c) => c.on("error", () => {})).listen(join(dir, "fs.sock"));
  vmm = spawn(writeDoubleLauncher(join(dir, "bin"), { record }), ["--api-socket", apiSocket], { stdio: "inherit" });
  api = clhApi(apiSocket);
  for (let i = 0; i < 200 && !existsSync(apiSocket); i++) await new Promise((r) => setTimeout(r, 25));
  await api.ping();
});

afterAll(() => {
  vmm.kill("SIGKILL");
  virtiofsd.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("cloud-hypervisor test double", () => {
  test("follows the spec's state rules and answers with the statuses it lists", async () => {
    expect(await api.info()).toBeUndefined();
    expect(await statusOf(api.put("vm.boot"))).toBe(404);
    expect(await statusOf(api.put("vm.pause"))).toBe(404);
    expect(await statusOf(api.put("vm.create", { ...config, memory: { size: "64M" } }))).toBe(400);

    expect(await statusOf(api.put("vm.create", config))).toBe(0);
    expect((await api.info())?.state).toBe("Created");
    expect(await statusOf(api.put("vm.create", config))).toBe(500); // the spec lists no status for this
    expect(await statusOf(api.put("vm.pause"))).toBe(405);
    expect(await statusOf(api.put("vm.shutdown"))).toBe(405);

    expect(await statusOf(api.put("vm.boot"))).toBe(0);
    expect((await api.info())?.state).toBe("Running");
    expect(existsSync(config.vsock!.socket)).toBe(true);
    expect(await statusOf(api.put("vm.resume"))).toBe(405);
    expect(await statusOf(api.put("vm.snapshot", { destination_url: `file://${dir}/snap` }))).toBe(405);

    expect(await statusOf(api.put("vm.pause"))).toBe(0);
    expect((await api.info())?.state).toBe("Paused");
    expect(await statusOf(api.put("vm.snapshot", { destination_url: `file://${dir}/snap` }))).toBe(0);
    expect(existsSync(join(dir, "snap", "config.json"))).toBe(true);
    expect(await statusOf(api.put("vm.restore", { source_url: `file://${dir}/snap` }))).toBe(404);

    expect(await statusOf(api.put("vm.resume"))).toBe(0);
    expect(await statusOf(api.put("vm.shutdown"))).toBe(0);
    expect((await api.info())?.state).toBe("Shutdown");
    expect(await statusOf(api.put("vm.delete"))).toBe(0);
    expect(await api.info()).toBeUndefined();

    // Restore: the vsock path must be free, then the VM comes back paused.
    writeFileSync(config.vsock!.socket, "");
    expect(await statusOf(api.put("vm.restore", { source_url: `file://${dir}/snap` }))).toBe(409);
    rmSync(config.vsock!.socket);
    expect(await statusOf(api.put("vm.restore", { source_url: `file://${dir}/snap` }))).toBe(0);
    expect((await api.info())?.state).toBe("Paused");

    const statuses = readRecord(record).filter((r) => r.status >= 400);
    for (const r of statuses)
      if (r.status !== 500 && r.status !== 400) expect(spec.lists(r.endpoint, r.method, r.status), `${r.endpoint} ${r.status}`).toBe(true);
  });

  test("refuses virtio-fs without shared memory or without a PCI segment for it", async () => {
    await api.put("vm.delete");
    const noShared = { ...config, memory: { size: config.memory.size } };
    const noSegment = { ...config, platform: undefined };
    expect(await api.put("vm.create", noShared).catch((e) => e.message)).toMatch(/memory.shared=true/);
    expect(await api.put("vm.create", noSegment).catch((e) => e.message)).toMatch(/needs platform.num_pci_segments > 1/);
  });

  test("answers a body with an unknown field with 400 naming it", async () => {
    const err = await api.put("vm.snapshot", { destination_url: "file:///x", destintion: 1 }).catch((e) => e);
    expect(err.status).toBe(400);
    expect(err.message).toContain("additional properties (destintion)");
  });
});
