import { describe, expect, test } from "vitest";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkBundle, defaultSpec, type Bundle } from "../../lib/oci/index.ts";

// The refusals of lib/oci/check-bundle.ts beyond the ones a container run
// shows (test/oci/conformance.test.ts), and what real clients pass that must
// be let through.

const dir = mkdtempSync(join(tmpdir(), "husk-check-"));
mkdirSync(join(dir, "data"));

function bundleWith(edit: (s: ReturnType<typeof defaultSpec> & { linux: Record<string, unknown> }) => void): Bundle {
  const spec = defaultSpec() as ReturnType<typeof defaultSpec> & { linux: Record<string, unknown> };
  edit(spec);
  return { path: dir, spec, rootfs: join(dir, "rootfs") };
}

const userns = (uid: unknown, gid: unknown = [{ containerID: 0, hostID: 1000, size: 1 }]) =>
  bundleWith((s) => {
    s.linux.namespaces = [...(s.linux.namespaces ?? []), { type: "user" as const }];
    s.linux.uidMappings = uid;
    s.linux.gidMappings = gid;
  });

describe("checkBundle", () => {
  test("what podman, containerd and CRI pass is accepted", () => {
    expect(() =>
      checkBundle(
        bundleWith((s) =>
          s.mounts!.push(
            { destination: "/run", type: "tmpfs", source: "tmpfs", options: ["rw", "rprivate", "nosuid", "nodev", "tmpcopyup", "context=\"system_u:object_r:container_file_t:s0\""] },
            { destination: "/sys/fs/cgroup", type: "cgroup", source: "cgroup", options: ["rprivate", "nosuid", "noexec", "nodev", "relatime", "ro"] },
            { destination: "/data", type: "bind", source: "data", options: ["rbind", "rslave", "ro"] }, // relative to the bundle
            { destination: "/n", type: "nfs", source: "srv:/x", options: ["vers=4", "whatever"] }, // other filesystems: the kernel's to judge
          ),
        ),
      ),
    ).not.toThrow();
    expect(() => checkBundle(userns([{ containerID: 0, hostID: 100000, size: 65536 }]))).not.toThrow();
  });

  test("id mappings the kernel would refuse are refused by field", () => {
    const refused = (b: Bundle, message: string) => expect(() => checkBundle(b)).toThrow(message);
    refused(userns([{ containerID: 0, hostID: 1000, size: 0 }]), "linux.uidMappings[0].size: must be at least 1");
    refused(userns([{ containerID: -1, hostID: 1000, size: 1 }]), "linux.uidMappings[0].containerID: must be an integer from 0 to 4294967295");
    refused(userns([{ containerID: 0, hostID: 4294967295, size: 2 }]), "linux.uidMappings[0]: the range goes past id 4294967295");
    refused(userns(Array.from({ length: 341 }, (_, i) => ({ containerID: i, hostID: 1000 + i, size: 1 }))), "linux.uidMappings: 341 ranges, over the kernel's limit of 340");
    refused(userns([{ containerID: 0, hostID: 1000, size: 1 }], [{ containerID: 0, hostID: 5, size: 10 }, { containerID: 10, hostID: 9, size: 1 }]), "linux.gidMappings: ranges 0 and 1 overlap in hostID");
    refused(userns("0:1000:1"), "linux.uidMappings: must be a list of {containerID, hostID, size}");
    refused(bundleWith((s) => (s.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }])), "linux.uidMappings: mappings are given but linux.namespaces has no user namespace");
  });

  test("a bind without a source, and a huge missing source, are refused briefly", () => {
    expect(() => checkBundle(bundleWith((s) => s.mounts!.push({ destination: "/x", type: "bind", options: ["rbind"] })))).toThrow("mounts[6].source: a bind mount needs a source");
    const long = `/${"a".repeat(4000)}`;
    let message = "";
    try {
      checkBundle(bundleWith((s) => s.mounts!.push({ destination: "/x", source: long, options: ["bind"] })));
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^mounts\[6\]\.source: "\/a+"\.\.\. \(4001 bytes\) does not exist$/);
    expect(message.length).toBeLessThan(400);
  });
});
