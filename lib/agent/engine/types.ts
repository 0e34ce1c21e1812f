import * as v from "valibot";
import { SpecSchema, type ContainerStatus } from "../../oci/index.ts";

// What callers (the agent service) hand the engine. Checked on entry so that a
// bad request becomes a HuskError naming the field, never a runc stack trace.

const Uint = v.pipe(v.number(), v.integer(), v.minValue(0));
const AbsPath = v.pipe(v.string(), v.startsWith("/", "must be an absolute path"));

export const ConsoleSizeSchema = v.object({
  width: v.pipe(Uint, v.maxValue(0xffff)),
  height: v.pipe(Uint, v.maxValue(0xffff)),
});
export type ConsoleSize = v.InferOutput<typeof ConsoleSizeSchema>;

// A directory used as is, or a read-only lower (e.g. on virtio-fs) under a
// private tmpfs upper so the container can write without touching the share.
export const RootfsSchema = v.variant("kind", [
  v.object({ kind: v.literal("path"), path: AbsPath }),
  v.object({
    kind: v.literal("overlay"),
    lower: v.union([AbsPath, v.pipe(v.array(AbsPath), v.minLength(1, "overlay needs a lower directory"))]),
    tmpfsSize: v.optional(v.pipe(v.string(), v.regex(/^\d+[kmgKMG%]?$/, "tmpfsSize must look like 64m or 50%"))),
  }),
]);
export type Rootfs = v.InferOutput<typeof RootfsSchema>;

export const CreateOptionsSchema = v.union([
  v.object({ bundle: v.string(), terminal: v.optional(v.boolean()), consoleSize: v.optional(ConsoleSizeSchema) }),
  v.object({
    spec: SpecSchema,
    rootfs: RootfsSchema,
    terminal: v.optional(v.boolean()),
    consoleSize: v.optional(ConsoleSizeSchema),
  }),
]);
export type CreateOptions = v.InferInput<typeof CreateOptionsSchema>;

export const ExecOptionsSchema = v.object({
  execId: v.optional(v.string()),
  args: v.pipe(v.array(v.string()), v.minLength(1, "args must name a program")),
  env: v.optional(v.array(v.string())),
  cwd: v.optional(AbsPath),
  user: v.optional(v.object({ uid: Uint, gid: Uint, additionalGids: v.optional(v.array(Uint)) })),
  terminal: v.optional(v.boolean()),
  consoleSize: v.optional(ConsoleSizeSchema),
});
export type ExecOptions = v.InferInput<typeof ExecOptionsSchema>;

export interface ExitStatus {
  exitCode: number; // 128 + signal when killed, as shells report
  signal?: number;
  exitedAt: Date;
}

export interface ContainerState {
  id: string;
  status: ContainerStatus; // never "creating": the engine lists a container once runc created it
  pid: number;
  bundle: string;
  rootfs: string;
  terminal: boolean;
  createdAt: Date;
  exit?: ExitStatus;
  execs: string[]; // exec ids of processes started with exec()
}

export interface ContainerStats {
  cpuUsageNs: number;
  memoryBytes: number;
  pids: number;
}

export type StreamName = "stdout" | "stderr";
