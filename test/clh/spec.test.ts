import { describe, expect, test } from "vitest";
import { loadChSpec } from "./spec.ts";

// The checks below are only worth something if the validator can say no.
describe("cloud-hypervisor OpenAPI validator", () => {
  const spec = loadChSpec();

  test("every schema in the spec compiles", () => {
    for (const name of Object.keys(spec.doc.components.schemas)) expect(() => spec.check(name, {})).not.toThrow();
  });

  test("maps endpoints to their request body schemas", () => {
    expect(spec.requestSchema("vm.create")).toBe("VmConfig");
    expect(spec.requestSchema("vm.snapshot")).toBe("VmSnapshotConfig");
    expect(spec.requestSchema("vm.restore")).toBe("RestoreConfig");
    expect(spec.requestSchema("vm.boot")).toBeUndefined();
  });

  test.each([
    ["a missing required field", { memory: { size: 1 } }, /must have required property 'payload'/],
    ["a wrong type", { payload: { kernel: 1 } }, /payload\/kernel must be string/],
    ["a misspelt field", { payload: {}, memory: { size: 1, shard: true } }, /additional properties \(shard\)/],
    ["an int16 out of range", { payload: {}, fs: [{ tag: "t", socket: "s", num_queues: 1, queue_size: 1, pci_segment: 40000 }] }, /int16/],
    ["a vsock cid below 3", { payload: {}, vsock: { cid: 2, socket: "s" } }, /cid must be >= 3/],
    ["a serial mode not in the enum", { payload: {}, serial: { mode: "Tcp" } }, /mode must be equal to one of the allowed values/],
  ])("rejects a VmConfig with %s", (_what, body, message) => {
    expect(spec.check("VmConfig", body).join("\n")).toMatch(message);
  });

  test("RestoreConfig knows memory_restore_mode and refuses unknown modes", () => {
    expect(spec.check("RestoreConfig", { source_url: "file:///s", memory_restore_mode: "OnDemand" })).toEqual([]);
    expect(spec.check("RestoreConfig", { source_url: "file:///s", memory_restore_mode: "Lazy" })).not.toEqual([]);
    expect(spec.check("RestoreConfig", {})).not.toEqual([]);
  });

  test("lists the error statuses of each operation", () => {
    expect(spec.lists("vm.pause", "put", 405)).toBe(true);
    expect(spec.lists("vm.restore", "put", 409)).toBe(true);
    expect(spec.lists("vm.create", "put", 409)).toBe(false);
  });
});
