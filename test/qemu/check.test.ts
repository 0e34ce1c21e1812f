import { describe, expect, test } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listGuestVersions } from "../../lib/guest/index.ts";
import { husk } from "../helpers/husk.ts";
import { QEMU, TEST_GUEST_DIR, buildAssets, vmSkipReason } from "./assets.ts";

const skip = vmSkipReason();
if (skip) console.log(`test/qemu check: skipped: ${skip}`);

describe.skipIf(!!skip)("husk check", () => {
  test("reports QEMU, the KVM verdict (probed once, then cached) and the guest assets", () => {
    expect(buildAssets().status).toBe(0);
    const env = { HUSK_GUEST_DIR: TEST_GUEST_DIR, HUSK_ROOT: mkdtempSync(join(tmpdir(), "husk-check-")), HUSK_CLOUD_HYPERVISOR: "/nonexistent/ch" };
    const r = husk(["check", "--json"], { env });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const rep = JSON.parse(r.stdout);
    const version = /version ([\w.+~-]+)/.exec(spawnSync(QEMU!, ["--version"], { encoding: "utf8" }).stdout)![1];
    expect(rep.qemu.qemu).toEqual({ path: QEMU, version });
    expect(rep.auto).toBe("qemu");
    // The newest version this build assembled itself (the package test's), else the newest.
    const commit = JSON.parse(husk(["version", "--json"]).stdout).commit;
    const versions = listGuestVersions(TEST_GUEST_DIR);
    expect(rep.qemu.guest.selected).toBe((versions.find((m) => commit !== "dev" && m.huskCommit === commit) ?? versions[0])!.version);
    expect(rep.qemu.kvm.device).toBe(existsSync("/dev/kvm"));
    expect(["kvm", "tcg"]).toContain(rep.qemu.kvm.accel);
    expect(rep.qemu.vhostVsock).toBe(existsSync("/dev/vhost-vsock"));
    expect(rep.qemu.virtiofsd.command).toContain("virtiofsd");

    const again = JSON.parse(husk(["check", "--json"], { env }).stdout);
    expect(again.qemu.kvm.accel).toBe(rep.qemu.kvm.accel);
    // Only a real probe run is cached; without /dev/kvm there is nothing to probe.
    if (rep.qemu.kvm.device) expect(again.qemu.kvm.cached).toBe(true);
  }, 120_000);

  test("with no QEMU and no assets it says what is missing and fails", () => {
    const empty = mkdtempSync(join(tmpdir(), "husk-check-empty-"));
    const r = husk(["check"], { env: { HUSK_GUEST_DIR: empty, HUSK_QEMU: "/nonexistent/qemu", HUSK_CLOUD_HYPERVISOR: "/nonexistent/ch", HUSK_ROOT: empty } });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain("qemu:               /nonexistent/qemu not found (apt-get install qemu-system-x86)");
    expect(r.stdout).toContain(`guest assets:       no guest assets in ${empty}: run 'husk guest build' first`);
    expect(r.stderr).toBe("husk: no usable hypervisor driver on this host\n");
  });
});
