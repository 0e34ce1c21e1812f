// The host's cgroups, where a VM sandbox's host processes are accounted
// (inside the VM, containers get the guest's own cgroups: lib/agent).
export { hostCgroupPath, type CgroupPath } from "./path.ts";
export { enterCgroup, makeCgroup, removeCgroup, type HostCgroup } from "./host.ts";
