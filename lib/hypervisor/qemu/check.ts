import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import type { Settings } from "../../config/index.ts";
import { errorMessage } from "../../core/index.ts";
import { listGuestVersions, resolveGuestAssets } from "../../guest/index.ts";
import { findExecutable } from "../select.ts";
import { chooseAccel } from "./accel.ts";
import { virtiofsdCommand } from "../virtiofsd.ts";

// What `husk check` reports about running VMs through QEMU on this host.
export interface QemuReport {
  qemu: { path?: string; version?: string; error?: string };
  kvm: { device: boolean; accel?: "kvm" | "tcg"; reason: string; cached?: boolean };
  vhostVsock: boolean;
  guest: { dir: string; versions: string[]; selected?: string; error?: string };
  virtiofsd: { command?: string; error?: string };
  agentChannel: "virtio-serial";
}

function qemuVersion(path: string): string | undefined {
  const r = spawnSync(path, ["--version"], { encoding: "utf8", timeout: 10_000 });
  return /version ([\w.+~-]+)/.exec(r.stdout ?? "")?.[1];
}

export async function qemuReport(settings: Settings, probe = true): Promise<QemuReport> {
  const path = findExecutable(settings.qemuPath);
  const versions = listGuestVersions(settings.guestDir).map((m) => m.version);
  const report: QemuReport = {
    qemu: path ? { path, version: qemuVersion(path) } : { error: `${settings.qemuPath} not found (apt-get install qemu-system-x86)` },
    kvm: { device: existsSync("/dev/kvm"), reason: "not probed" },
    vhostVsock: existsSync("/dev/vhost-vsock"),
    guest: { dir: settings.guestDir, versions },
    virtiofsd: {},
    // vsock needs an AF_VSOCK dialer on the host, which Bun lacks: virtio-serial serves everywhere.
    agentChannel: "virtio-serial",
  };
  try {
    const assets = resolveGuestAssets(settings.guestDir, settings.guestVersion);
    report.guest.selected = assets.version;
    report.virtiofsd.command = virtiofsdCommand(assets, settings.virtiofsdPath).join(" ");
    if (path && probe) {
      const c = await chooseAccel(path, assets, settings.root);
      report.kvm = { ...report.kvm, accel: c.accel, reason: c.reason, cached: c.cached };
    }
  } catch (e) {
    report.guest.error = errorMessage(e);
    if (!report.kvm.device) report.kvm.reason = "no /dev/kvm";
    else if (report.kvm.reason === "not probed") report.kvm.reason = "not probed: the probe boots the guest assets";
  }
  return report;
}
