import { defineCommand } from "citty";
import { HuskError, errorMessage } from "../lib/core/index.ts";
import { findExecutable, qemuCheck, resolveDriverName } from "../lib/hypervisor/index.ts";
import { getSettings } from "./globals.ts";

export default defineCommand({
  meta: { name: "check", description: "Report which hypervisors, KVM and guest assets this host can use" },
  args: {
    json: { type: "boolean", description: "print JSON" },
    probe: { type: "boolean", default: true, description: "boot a guest under KVM to see whether it works (--no-probe skips; the result is cached per host boot)" },
  },
  async run({ args }) {
    const settings = getSettings();
    const qemu = await qemuCheck(settings, args.probe);
    let auto: string;
    try {
      auto = resolveDriverName({ ...settings, hypervisor: "auto" });
    } catch (e) {
      auto = `none (${errorMessage(e)})`;
    }
    const report = {
      hypervisor: settings.hypervisor,
      auto,
      cloudHypervisor: findExecutable(settings.clhPath) ?? null,
      ociRuntime: findExecutable(settings.ociRuntime) ?? null,
      qemu,
    };
    if (args.json) console.log(JSON.stringify(report, null, 2));
    else print(report);
    if (auto.startsWith("none")) throw new HuskError("no usable hypervisor driver on this host", 1);
  },
});

function print(r: { hypervisor: string; auto: string; cloudHypervisor: string | null; ociRuntime: string | null; qemu: Awaited<ReturnType<typeof qemuCheck>> }): void {
  const q = r.qemu;
  const lines = [
    `hypervisor setting: ${r.hypervisor} (auto picks: ${r.auto})`,
    `cloud-hypervisor:   ${r.cloudHypervisor ?? "not found"}`,
    `qemu:               ${q.qemu.path ? `${q.qemu.path} ${q.qemu.version ?? ""}`.trim() : q.qemu.error}`,
    `kvm:                ${q.kvm.device ? "/dev/kvm present" : "no /dev/kvm"}; ${q.kvm.accel ? `using ${q.kvm.accel}: ` : ""}${q.kvm.reason}${q.kvm.cached ? " (cached)" : ""}`,
    `vhost-vsock:        ${q.vhostVsock ? "present" : "absent"}; agent channel: ${q.agentChannel}`,
    `guest assets:       ${q.guest.selected ? `${q.guest.selected} (${q.guest.versions.length} in ${q.guest.dir})` : q.guest.error}`,
    `virtiofsd:          ${q.virtiofsd.command ?? q.virtiofsd.error ?? "unknown (no guest assets)"}`,
    `oci runtime:        ${r.ociRuntime ?? "not found"}`,
  ];
  console.log(lines.join("\n"));
}
