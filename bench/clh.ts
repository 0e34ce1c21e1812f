import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSettings } from "../lib/config/index.ts";
import { checkpoint, clhApi, clhDriver, restore } from "../lib/hypervisor/clh/index.ts";
import type { VmSpec } from "../lib/hypervisor/index.ts";
import type { ClhVmRecord as VmState } from "../lib/persist/index.ts";
import { writeDoubleLauncher } from "../test/helpers/clh-double.ts";
import { writeVirtiofsdLauncher } from "../test/clh/virtiofsd-standin.ts";

// clh driver figures against the test double (cloud-hypervisor cannot run
// here): REST round trips over the API socket, the hybrid-vsock handshake, and
// start / checkpoint / restore as the driver sees them. Start and restore
// include spawning the double and the virtiofsd stand-in (two Bun processes),
// so they bound the driver's own overhead from above, not a real VM boot.

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (n: number) => `${n.toFixed(2)} ms`;

async function timed<T>(samples: number[], f: () => Promise<T>): Promise<T> {
  const t = performance.now();
  const out = await f();
  samples.push(performance.now() - t);
  return out;
}

const work = mkdtempSync("/tmp/husk-bench-clh-");
const settings = {
  ...loadSettings({}, { HUSK_CONFIG: "/dev/null" }),
  clhPath: writeDoubleLauncher(join(work, "bin")),
  virtiofsdPath: writeVirtiofsdLauncher(join(work, "bin")),
};
writeFileSync(join(work, "vmlinux"), "kernel");
writeFileSync(join(work, "initrd"), "initrd");
mkdirSync(join(work, "shared"));
const spec = (id: string): VmSpec => ({
  sandboxId: id,
  vmDir: join(work, "vm", id),
  sharedDir: join(work, "shared"),
  cpus: 1,
  memoryMiB: 128,
  assets: { version: "b", dir: work, kernel: join(work, "vmlinux"), initrd: join(work, "initrd"), cmdline: "" },
});
const driver = clhDriver(settings);
const live: VmState[] = [];

try {
  const starts: number[] = [];
  const checkpoints: number[] = [];
  const restores: number[] = [];
  for (let i = 0; i < 3; i++) {
    const vm = await timed(starts, () => driver.start(spec(`s${i}`)));
    live.push(vm);
    const snap = await timed(checkpoints, () => checkpoint(vm, join(work, `snap${i}`)));
    await driver.stop(vm);
    live.push(await timed(restores, () => restore(settings, snap, spec(`r${i}`))));
  }
  console.log(`clh: start (spawn VMM + virtiofsd, create, boot): median ${ms(median(starts))} (n=3)`);
  console.log(`clh: checkpoint (pause, snapshot): median ${ms(median(checkpoints))} (n=3)`);
  console.log(`clh: restore (spawn, rewrite config, restore, resume): median ${ms(median(restores))} (n=3)`);

  const vm = live[live.length - 1]!;
  const api = clhApi(vm.apiSocket!);
  const infos: number[] = [];
  for (let i = 0; i < 200; i++) await timed(infos, () => api.info());
  console.log(`clh: GET /vm.info round trip: median ${ms(median(infos))}, ${(1000 / median(infos)).toFixed(0)}/s (n=200)`);

  const dials: number[] = [];
  for (let i = 0; i < 50; i++) (await timed(dials, () => driver.dialAgent(vm, 2000))).destroy();
  console.log(`clh: hybrid vsock connect + handshake: median ${ms(median(dials))} (n=50)`);
} finally {
  for (const vm of live) await driver.stop(vm);
  rmSync(work, { recursive: true, force: true });
}
