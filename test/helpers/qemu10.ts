import { existsSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { downloadDebs, extractDeb } from "../../lib/guest/apt.ts";

// Snapshots of a VM with virtio-fs need QEMU 10 (vhost-user-fs migration):
// Debian's from bookworm-backports, taken at test time and extracted beside
// its .debs (kept between runs). The host's own QEMU stays what it is; this
// one reads its firmware from the host's /usr/share/qemu.

const CACHE = process.env.HUSK_TEST_QEMU10_CACHE ?? "/var/tmp/husk-qemu10";
const PACKAGES = ["qemu-system-x86", "qemu-system-data"];

export function qemu10(): string {
  const debs = downloadDebs({ suite: "bookworm-backports", cacheDir: CACHE }, PACKAGES);
  const root = join(CACHE, `root-${debs[0]!.version.replace(/[^\w.+~-]/g, "_")}`);
  const bin = join(root, "usr", "bin", "qemu-system-x86_64");
  if (existsSync(bin)) return bin;
  const tmp = `${root}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  for (const d of debs) extractDeb(d, tmp);
  renameSync(tmp, root);
  return bin;
}
