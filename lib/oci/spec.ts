import * as v from "valibot";
import { preview } from "../core/index.ts";

// The parts of the OCI runtime-spec config.json that husk reads. Objects are
// loose: every field we do not model is kept and handed on to the agent's runtime.
//
// Sizes are bounded before any work is done (docs/limits.md): generous for
// any real container, and an error that names the field and shows a short
// preview of the value instead of a bundle that runs for a minute.
export const LIMITS = {
  configBytes: 4 * 1024 * 1024, // config.json
  pathBytes: 4096, // PATH_MAX: cwd, root.path, mount source and destination, cgroupsPath, namespace paths
  argBytes: 128 * 1024, // MAX_ARG_STRLEN: one args or env entry
  argEntries: 16_384, // process.args, process.env (each)
  argTotalBytes: 2 * 1024 * 1024, // ARG_MAX with the default 8 MiB stack: args and env together
  mounts: 1024,
  mountOptions: 256, // entries of one mount's options
  shortBytes: 1024, // mount type and each option, rlimit type, annotation key
  hostnameBytes: 64, // HOST_NAME_MAX
  annotations: 1024,
  annotationBytes: 256 * 1024, // one annotation value
  rlimits: 64,
  namespaces: 16,
  hooks: 256, // entries of one hook kind
  additionalGids: 65_536, // NGROUPS_MAX
} as const;

const bytes = (s: string) => Buffer.byteLength(s);
const Bounded = (max: number) =>
  v.pipe(
    v.string(),
    v.check((s) => s.length <= max && bytes(s) <= max, (i) => `over the limit of ${max} bytes: ${preview(i.input)}`),
  );
// The length is checked before the items, so a huge array costs nothing.
const List = <T extends v.GenericSchema>(item: T, max: number) =>
  v.pipe(
    v.unknown(),
    v.check((a) => !Array.isArray(a) || a.length <= max, (i) => `${(i.input as unknown[]).length} entries, over the limit of ${max}`),
    v.array(item),
  );

const Str = Bounded(LIMITS.pathBytes);
const Short = Bounded(LIMITS.shortBytes);
const Uint = v.pipe(v.number(), v.integer(), v.minValue(0));
const ArgList = List(Bounded(LIMITS.argBytes), LIMITS.argEntries);
const totalBytes = (l: readonly string[] | undefined) => (l ?? []).reduce((n, s) => n + bytes(s) + 1, 0);

export const UserSchema = v.looseObject({
  uid: Uint,
  gid: Uint,
  umask: v.optional(Uint),
  additionalGids: v.optional(List(Uint, LIMITS.additionalGids)),
});

export const ConsoleSizeSchema = v.object({ height: Uint, width: Uint });

export const ProcessSchema = v.pipe(
  v.looseObject({
    terminal: v.optional(v.boolean()),
    consoleSize: v.optional(ConsoleSizeSchema),
    user: UserSchema,
    args: v.pipe(ArgList, v.minLength(1, "process.args must name a program")),
    env: v.optional(ArgList),
    cwd: v.pipe(Str, v.startsWith("/", "process.cwd must be an absolute path")),
    noNewPrivileges: v.optional(v.boolean()),
    capabilities: v.optional(v.looseObject({})),
    rlimits: v.optional(List(v.looseObject({ type: Short, hard: Uint, soft: Uint }), LIMITS.rlimits)),
  }),
  v.check(
    (p) => totalBytes(p.args) + totalBytes(p.env) <= LIMITS.argTotalBytes,
    (i) => {
      const p = i.input as { args: string[]; env?: string[] };
      return `args and env take ${totalBytes(p.args) + totalBytes(p.env)} bytes together, over the limit of ${LIMITS.argTotalBytes}`;
    },
  ),
);
export type ProcessSpec = v.InferOutput<typeof ProcessSchema>;

export const MountSchema = v.looseObject({
  destination: v.pipe(Str, v.minLength(1)),
  source: v.optional(Str),
  type: v.optional(Short),
  options: v.optional(List(Short, LIMITS.mountOptions)),
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

// A lifecycle hook (runtime-spec config.md "POSIX-platform Hooks").
export const HookSchema = v.looseObject({
  path: v.pipe(Str, v.startsWith("/", "a hook path must be absolute")),
  args: v.optional(ArgList),
  env: v.optional(ArgList),
  timeout: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1, "a hook timeout must be at least 1 second"))),
});
export type HookSpec = v.InferOutput<typeof HookSchema>;

const HookList = v.optional(List(HookSchema, LIMITS.hooks));
export const HooksSchema = v.looseObject({
  prestart: HookList,
  createRuntime: HookList,
  createContainer: HookList,
  startContainer: HookList,
  poststart: HookList,
  poststop: HookList,
});

export const LinuxSchema = v.looseObject({
  namespaces: v.optional(List(NamespaceSchema, LIMITS.namespaces)),
  resources: v.optional(v.looseObject({})),
  cgroupsPath: v.optional(Str),
});

export const SpecSchema = v.looseObject({
  ociVersion: v.pipe(Short, v.regex(/^1\.\d+\.\d+/, "ociVersion must be a 1.x.y version")),
  process: v.optional(ProcessSchema),
  root: v.optional(RootSchema),
  hostname: v.optional(Bounded(LIMITS.hostnameBytes)),
  mounts: v.optional(List(MountSchema, LIMITS.mounts)),
  annotations: v.optional(
    v.pipe(
      v.unknown(),
      v.check(
        (a) => typeof a !== "object" || a === null || Object.keys(a).length <= LIMITS.annotations,
        (i) => `${Object.keys(i.input as object).length} entries, over the limit of ${LIMITS.annotations}`,
      ),
      v.record(Short, Bounded(LIMITS.annotationBytes)),
    ),
  ),
  linux: v.optional(LinuxSchema),
  hooks: v.optional(HooksSchema),
});
export type Spec = v.InferOutput<typeof SpecSchema>;
