import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makeBusyboxRootfs } from "./bundle.ts";

// Container images built here from busybox-static: no registry is reachable.

function sh(cmd: string[], cwd?: string): void {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr}`);
}

// A plain tar of a busybox rootfs (for `podman import`).
export function busyboxRootfsTar(dir: string): string {
  const rootfs = makeBusyboxRootfs(join(dir, "rootfs"));
  const tar = join(dir, "rootfs.tar");
  sh(["tar", "-C", rootfs, "-cf", tar, "."]);
  return tar;
}

const sha256 = (data: Uint8Array) => new Bun.CryptoHasher("sha256").update(data).digest("hex");

// An OCI image layout tarball (for `ctr image import`), named `name`;
// `config` overrides the image's Cmd/Entrypoint/Env.
export function busyboxOciTar(dir: string, name: string, imageConfig: Record<string, unknown> = {}): string {
  const layer = readFileSync(busyboxRootfsTar(dir));
  const layout = join(dir, "layout");
  const blobs = join(layout, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const put = (data: Uint8Array) => {
    const digest = sha256(data);
    writeFileSync(join(blobs, digest), data);
    return { digest: `sha256:${digest}`, size: data.length };
  };
  const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  const layerRef = put(layer);
  const config = put(enc({
    architecture: "amd64",
    os: "linux",
    config: { Env: ["PATH=/bin"], Cmd: ["sh"], ...imageConfig },
    rootfs: { type: "layers", diff_ids: [layerRef.digest] },
  }));
  const manifest = put(enc({
    schemaVersion: 2,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
    layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layerRef }],
  }));
  writeFileSync(join(layout, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(join(layout, "index.json"), JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      ...manifest,
      annotations: { "io.containerd.image.name": name, "org.opencontainers.image.ref.name": "latest" },
    }],
  }));
  const tar = join(dir, "image-oci.tar");
  sh(["tar", "-C", layout, "-cf", tar, "."]);
  return tar;
}
