import { readFileSync } from "node:fs";
import { cpus, hostname, release, totalmem } from "node:os";

// What the agent reports about the machine it runs in (a guest, or the host
// for the local driver).
export function guestDetails(ociRuntime: string, ociRuntimeVersion: string) {
  let bootId = "";
  try {
    bootId = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {}
  return {
    kernelRelease: release(),
    bootId,
    hostname: hostname(),
    ociRuntime,
    ociRuntimeVersion,
    cpus: cpus().length,
    memoryBytes: BigInt(totalmem()),
  };
}
