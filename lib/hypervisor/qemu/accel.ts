import { spawn } from "node:child_process";
import { accessSync, constants, readFileSync } from "node:fs";
import { keepCacheFile } from "../../core/index.ts";
import { join } from "node:path";
import { GUEST_PROBE_MARK } from "../../guest/index.ts";
import type { GuestAssets } from "../types.ts";
import { accelArgs, baseArgs, kernelCmdline, type Accel } from "./cmdline.ts";

// /dev/kvm can exist and still be unable to boot our kernel (nested PVM: the
// guest hangs silently). So KVM is used only after a real guest reached init
// under it. The verdict holds until the host reboots, so it is cached per boot.

export interface AccelChoice {
  accel: Accel;
  reason: string;
  cached: boolean;
}

export const PROBE_TIMEOUT_MS = 8000;

const bootId = (): string => {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return "unknown";
  }
};

function kvmAccessible(): string | undefined {
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
    return undefined;
  } catch (e) {
    return `/dev/kvm is not usable (${(e as NodeJS.ErrnoException).code})`;
  }
}

// Boots the guest under KVM with husk.mode=probe; true once init printed its mark.
export function probeKvm(qemu: string, assets: GuestAssets, timeoutMs = PROBE_TIMEOUT_MS): Promise<{ ok: boolean; reason: string }> {
  const args = [
    ...baseArgs("kvm", 1, 256, false),
    "-kernel", assets.kernel, "-initrd", assets.initrd,
    "-append", kernelCmdline(assets, "husk.mode=probe"),
    "-serial", "stdio",
  ];
  return new Promise((resolve) => {
    const child = spawn(qemu, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const started = Date.now();
    const done = (ok: boolean, reason: string) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      resolve({ ok, reason });
    };
    const timer = setTimeout(() => done(false, `a guest under KVM did not reach init within ${timeoutMs} ms`), timeoutMs);
    child.stdout.on("data", (d) => {
      out += d;
      if (out.includes(GUEST_PROBE_MARK)) done(true, `a guest under KVM reached init in ${Date.now() - started} ms`);
    });
    child.stderr.on("data", (d) => (err += d));
    child.on("error", (e) => done(false, `cannot run ${qemu}: ${e.message}`));
    child.on("exit", (code) => done(false, `QEMU under KVM exited (${code}) before init: ${err.trim().split("\n").slice(-2).join("; ")}`));
  });
}

export async function chooseAccel(qemu: string, assets: GuestAssets, root: string, wanted: "auto" | Accel = "auto"): Promise<AccelChoice> {
  if (wanted !== "auto") return { accel: wanted, reason: `${wanted} requested`, cached: false };
  const denied = kvmAccessible();
  if (denied) return { accel: "tcg", reason: denied, cached: false };
  const cacheFile = join(root, "qemu", "kvm-probe.json");
  const key = { bootId: bootId(), qemu, assets: assets.version };
  try {
    const c = JSON.parse(readFileSync(cacheFile, "utf8"));
    if (c.bootId === key.bootId && c.qemu === key.qemu && c.assets === key.assets)
      return { accel: c.ok ? "kvm" : "tcg", reason: c.reason, cached: true };
  } catch {
    // no or unreadable cache: probe
  }
  const r = await probeKvm(qemu, assets);
  keepCacheFile(cacheFile, JSON.stringify({ ...key, ...r, at: new Date().toISOString() }) + "\n");
  return { accel: r.ok ? "kvm" : "tcg", reason: r.reason, cached: false };
}
