import * as v from "valibot";

// The parts of the OCI runtime-spec config.json that husk reads. Objects are
// loose: every field we do not model is kept and handed on to the agent's runtime.

const Str = v.string();
const StrList = v.array(v.string());
const Uint = v.pipe(v.number(), v.integer(), v.minValue(0));

export const UserSchema = v.looseObject({
  uid: Uint,
  gid: Uint,
  umask: v.optional(Uint),
  additionalGids: v.optional(v.array(Uint)),
});

export const ConsoleSizeSchema = v.object({ height: Uint, width: Uint });

export const ProcessSchema = v.looseObject({
  terminal: v.optional(v.boolean()),
  consoleSize: v.optional(ConsoleSizeSchema),
  user: UserSchema,
  args: v.pipe(StrList, v.minLength(1, "process.args must name a program")),
  env: v.optional(StrList),
  cwd: v.pipe(Str, v.startsWith("/", "process.cwd must be an absolute path")),
  noNewPrivileges: v.optional(v.boolean()),
  capabilities: v.optional(v.looseObject({})),
  rlimits: v.optional(v.array(v.looseObject({ type: Str, hard: Uint, soft: Uint }))),
});
export type ProcessSpec = v.InferOutput<typeof ProcessSchema>;

export const MountSchema = v.looseObject({
  destination: v.pipe(Str, v.minLength(1)),
  source: v.optional(Str),
  type: v.optional(Str),
  options: v.optional(StrList),
});
export type MountSpec = v.InferOutput<typeof MountSchema>;

export const RootSchema = v.looseObject({
  path: v.pipe(Str, v.minLength(1, "root.path must not be empty")),
  readonly: v.optional(v.boolean()),
});

export const NamespaceSchema = v.looseObject({
  type: v.picklist(["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]),
  path: v.optional(Str),
});

export const LinuxSchema = v.looseObject({
  namespaces: v.optional(v.array(NamespaceSchema)),
  resources: v.optional(v.looseObject({})),
  cgroupsPath: v.optional(Str),
});

export const SpecSchema = v.looseObject({
  ociVersion: v.pipe(Str, v.regex(/^1\.\d+\.\d+/, "ociVersion must be a 1.x.y version")),
  process: v.optional(ProcessSchema),
  root: v.optional(RootSchema),
  hostname: v.optional(Str),
  mounts: v.optional(v.array(MountSchema)),
  annotations: v.optional(v.record(Str, Str)),
  linux: v.optional(LinuxSchema),
});
export type Spec = v.InferOutput<typeof SpecSchema>;
