import { defineCommand } from "citty";
import { OCI_SPEC_VERSION } from "../../lib/core/index.ts";

// The runtime-spec "features" document (as runc prints it): what husk accepts.
const features = () => ({
  ociVersionMin: "1.0.0",
  ociVersionMax: OCI_SPEC_VERSION,
  hooks: [] as string[],
  mountOptions: ["bind", "rbind", "ro", "rw", "nosuid", "nodev", "noexec", "relatime", "private", "rprivate"],
  linux: {
    namespaces: ["cgroup", "ipc", "mount", "network", "pid", "uts"],
    capabilities: [] as string[],
    cgroup: { v1: true, v2: true, systemd: false, systemdUser: false },
    selinux: { enabled: false },
    apparmor: { enabled: false },
  },
  annotations: {
    "io.github.husk.hypervisors": "clh,qemu,local",
    "io.github.husk.isolation": "micro-VM per sandbox (none with the local driver)",
  },
});

export default defineCommand({
  meta: { name: "features", description: "Show the enabled features (JSON)" },
  run() {
    console.log(JSON.stringify(features(), null, 4));
  },
});
