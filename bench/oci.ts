// husk's CLI side by side with runc in one run: `state` on a running container
// (Bun's start-up is the floor), `create` + `start` of a busybox bundle up to
// running, and `podman run --rm <image> true` with either runtime. Prints
// medians and ratios; targets: state <= 2.0x, podman <= 1.5x.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { makeBusyboxBundle } from "../test/helpers/bundle.ts";
import { busyboxRootfsTar } from "../test/helpers/images.ts";
import { installHostConfig } from "../test/helpers/host-config.ts";

const HUSK = join(import.meta.dirname, "..", "dist", "husk");
const work = mkdtempSync(join(tmpdir(), "husk-bench-oci-"));

function time(cmd: string[], env?: Record<string, string>): number {
  const t0 = performance.now();
  const r = spawnSync(cmd[0]!, cmd.slice(1), { stdio: "ignore", env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${cmd.join(" ")} exited ${r.status}`);
  return performance.now() - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function sample(n: number, fn: () => number): number {
  fn(); // warm caches
  return median(Array.from({ length: n }, fn));
}

function benchState(): void {
  const bundle = makeBusyboxBundle(join(work, "bundle"), { args: ["sleep", "300"] });
  const huskRoot = join(work, "husk-root");
  const runcRoot = join(work, "runc-root");
  const env = { HUSK_CONFIG: "/dev/null", HUSK_HYPERVISOR: "local" };
  const husk = (...a: string[]) => [HUSK, "--root", huskRoot, ...a];
  const runc = (...a: string[]) => ["runc", "--root", runcRoot, ...a];
  time(husk("run", "-d", "--bundle", bundle, "bench-h"), env);
  time(runc("run", "-d", "--bundle", bundle, "bench-r"));
  try {
    const h = sample(30, () => time(husk("state", "bench-h"), env));
    const r = sample(30, () => time(runc("state", "bench-r")));
    console.log(`state, running container (median of 30): husk ${h.toFixed(1)} ms, runc ${r.toFixed(1)} ms, ratio ${(h / r).toFixed(2)} (target <= 2.0)`);
  } finally {
    time(husk("delete", "--force", "bench-h"), env);
    time(runc("delete", "--force", "bench-r"));
  }
}

// create→running: `create --bundle B id` then `start id`, the clock stopped when
// `start` returns. husk and runc alternate per sample; both containers are
// deleted after each sample, outside the timed part. husk create leaves a
// detached shim behind: time() runs it with stdio "ignore", so no pipe is held.
function benchCreate(): void {
  const bundle = makeBusyboxBundle(join(work, "bundle-create"), { args: ["sleep", "300"] });
  const huskRoot = join(work, "husk-root-create");
  const runcRoot = join(work, "runc-root-create");
  const env = { HUSK_CONFIG: "/dev/null", HUSK_HYPERVISOR: "local" };
  const husk = (...a: string[]) => [HUSK, "--root", huskRoot, ...a];
  const runc = (...a: string[]) => ["runc", "--root", runcRoot, ...a];
  const n = 10;
  const hs: number[] = [];
  const rs: number[] = [];
  for (let i = 0; i <= n; i++) { // i = 0 warms caches and is not kept
    const hid = `create-h-${i}`;
    const rid = `create-r-${i}`;
    try {
      let t0 = performance.now();
      time(husk("create", "--bundle", bundle, hid), env);
      time(husk("start", hid), env);
      const h = performance.now() - t0;
      t0 = performance.now();
      time(runc("create", "--bundle", bundle, rid));
      time(runc("start", rid));
      const r = performance.now() - t0;
      if (i > 0) { hs.push(h); rs.push(r); }
    } finally {
      spawnSync(HUSK, ["--root", huskRoot, "delete", "--force", hid], { stdio: "ignore", env: { ...process.env, ...env } });
      spawnSync("runc", ["--root", runcRoot, "delete", "--force", rid], { stdio: "ignore" });
    }
  }
  const h = median(hs);
  const r = median(rs);
  console.log(`create→running, local (median of ${n}): husk ${h.toFixed(0)} ms, runc ${r.toFixed(0)} ms, ratio ${(h / r).toFixed(2)}`);
}

function benchPodman(): void {
  const env = { CONTAINERS_STORAGE_CONF: join(work, "storage.conf"), CONTAINERS_CONF: join(work, "containers.conf") };
  writeFileSync(env.CONTAINERS_STORAGE_CONF, `[storage]\ndriver = "vfs"\nrunroot = "${work}/pm-run"\ngraphroot = "${work}/pm-graph"\n`);
  writeFileSync(env.CONTAINERS_CONF, `[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n`);
  const image = "localhost/husk-bench:latest";
  time(["podman", "import", busyboxRootfsTar(join(work, "img")), image], env);
  const restore = installHostConfig(`hypervisor = "local"\nroot = "${work}/podman-husk-root"\n`);
  try {
    const run = (runtime: string) => () => time(["podman", "--runtime", runtime, "run", "--rm", "--network", "none", image, "true"], env);
    const h = sample(10, run(HUSK));
    const r = sample(10, run("runc"));
    console.log(`podman run --rm true (median of 10): husk ${h.toFixed(0)} ms, runc ${r.toFixed(0)} ms, ratio ${(h / r).toFixed(2)} (target <= 1.5)`);
  } finally {
    restore();
  }
}

benchState();
benchCreate();
benchPodman();
