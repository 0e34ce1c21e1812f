import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { busyboxRootfsTar } from "../test/helpers/images.ts";
import { installHostConfig } from "../test/helpers/host-config.ts";
import { DIST_HUSK } from "../test/helpers/husk.ts";
import { qemu10 } from "../test/helpers/qemu10.ts";
import { TEST_GUEST_DIR, buildAssets, vmSkipReason } from "../test/qemu/assets.ts";

// `podman run --rm IMAGE true` wall time, side by side in one run: runc,
// husk with the local driver, husk with the qemu driver (TCG unless KVM).
// Absolute VM figures under TCG mean little; compare the ratios.
// Needs podman and dist/husk; rewrites /etc/husk/config.toml while it runs.

const RUNS = Number(process.env.HUSK_BENCH_PODMAN_RUNS ?? 3);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) => `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}, n=${xs.length})`;

const work = mkdtempSync(join(tmpdir(), "husk-bench-podman-"));
const env = { ...process.env, CONTAINERS_STORAGE_CONF: join(work, "storage.conf"), CONTAINERS_CONF: join(work, "containers.conf") };
writeFileSync(env.CONTAINERS_STORAGE_CONF, `[storage]\ndriver = "vfs"\nrunroot = "${work}/run"\ngraphroot = "${work}/graph"\n`);
writeFileSync(
  env.CONTAINERS_CONF,
  `[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n` +
    `[network]\nnetwork_config_dir = "${work}/net"\n`,
);
const image = "localhost/husk-bench-busybox:latest";
// A bridge network (podman's default kind) lives in a network namespace of
// the bench's own, so no frame leaves the machine; podman runs inside it.
const NETNS = `husk-bench-podman-${process.pid}`;
const podman = (args: string[], bridged = false) =>
  bridged
    ? spawnSync("nsenter", [`--net=/run/netns/${NETNS}`, "podman", ...args], { env, encoding: "utf8", timeout: 300_000 })
    : spawnSync("podman", args, { env, encoding: "utf8", timeout: 300_000 });

function time(runtime: string, runs = RUNS, network = "none"): number[] {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const r = podman(["--runtime", runtime, "run", "--rm", "--network", network, image, "true"], network !== "none");
    if (r.status !== 0) throw new Error(`podman --runtime ${runtime} run: ${r.stderr}`);
    out.push(performance.now() - t0);
  }
  return out;
}

// With a bridge network: runc, then husk cold and from a template (a VM with
// one network device; its first run builds it and is not counted).
function bridged(cold: () => void, templates: () => void): void {
  mkdirSync(join(work, "net"), { recursive: true });
  if (spawnSync("ip", ["netns", "add", NETNS]).status !== 0) throw new Error(`ip netns add ${NETNS} failed`);
  spawnSync("ip", ["-n", NETNS, "link", "set", "lo", "up"]);
  if (podman(["network", "create", "--subnet", "10.93.0.0/24", "huskbench"]).status !== 0) throw new Error("podman network create failed");
  const runc = time("runc", RUNS, "huskbench");
  cold();
  const c = time(DIST_HUSK, RUNS, "huskbench");
  templates();
  time(DIST_HUSK, 1, "huskbench");
  const warm = time(DIST_HUSK, RUNS, "huskbench");
  console.log(`podman run --rm --network bridge true, runc:                  ${fmt(runc)}`);
  console.log(`podman run --rm --network bridge true, husk QEMU 10 cold:     ${fmt(c)} (${(median(c) / median(runc)).toFixed(1)}x runc)`);
  console.log(`podman run --rm --network bridge true, husk QEMU 10 template: ${fmt(warm)} (${(median(warm) / median(runc)).toFixed(1)}x runc)`);
}

const huskRoot = join(work, "husk-root");
let restore: (() => void) | undefined;
try {
  if (podman(["import", busyboxRootfsTar(join(work, "img")), image]).status !== 0) throw new Error("podman import failed");
  const runc = time("runc");
  restore = installHostConfig(`hypervisor = "local"\nroot = "${huskRoot}"\n`);
  const local = time(DIST_HUSK);
  console.log(`podman run --rm true, runc:        ${fmt(runc)}`);
  console.log(`podman run --rm true, husk local:  ${fmt(local)} (${(median(local) / median(runc)).toFixed(1)}x runc)`);
  const skip = vmSkipReason();
  if (skip) console.log(`podman run --rm true, husk qemu: n/a (${skip})`);
  else {
    const built = buildAssets();
    const version = /guest assets (\S+)/.exec(built.stdout)?.[1];
    if (!version) throw new Error(`guest build: ${built.stderr}`);
    installHostConfig(`hypervisor = "qemu"\nroot = "${huskRoot}"\n[guest]\ndir = "${TEST_GUEST_DIR}"\nversion = "${version}"\n`);
    const qemu = time(DIST_HUSK);
    console.log(`podman run --rm true, husk qemu:   ${fmt(qemu)} (${(median(qemu) / median(runc)).toFixed(1)}x runc)`);
    // QEMU 10, cold and from a VM template (the first run builds it: not counted).
    const q10 = qemu10();
    const qemu10Config = (templates: boolean) =>
      `hypervisor = "qemu"\nroot = "${huskRoot}"\n[qemu]\npath = "${q10}"\n[vm]\ntemplates = ${templates}\n[guest]\ndir = "${TEST_GUEST_DIR}"\nversion = "${version}"\n`;
    installHostConfig(qemu10Config(false));
    const cold = time(DIST_HUSK);
    installHostConfig(qemu10Config(true));
    time(DIST_HUSK, 1);
    const warm = time(DIST_HUSK);
    console.log(`podman run --rm true, husk QEMU 10 cold:     ${fmt(cold)} (${(median(cold) / median(runc)).toFixed(1)}x runc)`);
    console.log(`podman run --rm true, husk QEMU 10 template: ${fmt(warm)} (${(median(warm) / median(runc)).toFixed(1)}x runc)`);
    bridged(() => installHostConfig(qemu10Config(false)), () => installHostConfig(qemu10Config(true)));
  }
} finally {
  restore?.();
  spawnSync("ip", ["netns", "del", NETNS]);
  podman(["rmi", "-f", image]);
  rmSync(work, { recursive: true, force: true });
}
