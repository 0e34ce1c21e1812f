// Persist format 1.2 — not yet released. A minor of 1.1: additive only, so
// release 0.2.0 (format 1.1) still reads, keeps and writes back a 1.2 document.
//
// What 1.2 adds:
//   hostCgroup  where the sandbox's host processes (VMM, virtiofsd, proxy,
//               shims) are accounted: linux.cgroupsPath of its first container
//   template    the VM template the sandbox's VM was restored from
//   containers[].shareSlots
//               where the guest reads each bind mount's source (mounts/<slot>
//               of the container's share), recorded at checkpoint
//   containers[].shareName
//               the container's directory in the share when it is not derived
//               from its id: a checkpoint restored under another id
//
// Like v1.ts, nothing here imports from the rest of the tree but older formats.
import * as v from "valibot";
import { ContainerV1_1, SandboxV1_1 } from "./v1_1.ts";

export const HostCgroupV1_2 = v.looseObject({
  path: v.string(), // as resolved from cgroupsPath: "/a/b", or "a/b" below husk's own cgroup
  dirs: v.array(v.string()), // the leaf directory made in each hierarchy, removed at delete
  memoryLimit: v.optional(v.number()), // bytes: guest memory and the host side's overhead
});

// A VM restored from a template instead of booted (lib/sandbox/template.ts).
export const TemplateV1_2 = v.looseObject({
  key: v.string(), // hash of what binds it: husk build, guest assets, VMM, VM size
  path: v.string(), // the template's directory
});

// A bind mount of a container as its guest has it: the source of the mount
// at destination sits at mounts/<slot> of the container's share (a restore
// from a bundle written anew binds each source where the guest looks).
export const ShareSlotV1_2 = v.looseObject({ slot: v.pipe(v.number(), v.integer(), v.minValue(0)), destination: v.string() });

export const ContainerV1_2 = v.looseObject({
  ...ContainerV1_1.entries,
  shareSlots: v.optional(v.array(ShareSlotV1_2)),
  shareName: v.optional(v.string()),
});

export const SandboxV1_2 = v.looseObject({
  ...SandboxV1_1.entries,
  formatVersion: v.literal("1.2"),
  containers: v.array(ContainerV1_2),
  hostCgroup: v.optional(HostCgroupV1_2),
  template: v.optional(TemplateV1_2),
});
