import { readFileSync, statSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import * as v from "valibot";
import { ErrorCode, HuskError, describeIssues, errorMessage, preview } from "../core/index.ts";
import { LIMITS, SpecSchema, type Spec } from "./spec.ts";

export interface Bundle {
  path: string; // absolute bundle directory
  spec: Spec;
  rootfs: string; // absolute rootfs path on the host
}

function readConfig(file: string): unknown {
  let text: string;
  try {
    const size = statSync(file).size;
    if (size > LIMITS.configBytes)
      throw new HuskError(`${file}: ${size} bytes, over the limit of ${LIMITS.configBytes} for config.json`, { code: ErrorCode.ResourceExhausted });
    text = readFileSync(file, "utf8");
  } catch (e) {
    if (e instanceof HuskError) throw e;
    const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
    throw new HuskError(`cannot read ${file}: ${errorMessage(e)}`, { code: missing ? ErrorCode.NotFound : ErrorCode.Internal });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HuskError(`${file} is not valid JSON: ${errorMessage(e)}`, { code: ErrorCode.InvalidArgument });
  }
}

export function parseSpec(raw: unknown, where: string): Spec {
  const parsed = v.safeParse(SpecSchema, raw);
  if (!parsed.success) throw new HuskError(`invalid ${where}: ${describeIssues(parsed.issues)}`, { code: ErrorCode.InvalidArgument });
  return parsed.output;
}

// Loads <bundle>/config.json as `husk create --bundle` does.
export function loadBundle(dir: string): Bundle {
  const path = resolve(dir);
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new HuskError(`bundle ${path} does not exist`, { code: ErrorCode.NotFound });
  }
  if (!isDir) throw new HuskError(`bundle ${path} is not a directory`, { code: ErrorCode.InvalidArgument });
  const file = `${path}/config.json`;
  const spec = parseSpec(readConfig(file), file);
  if (!spec.root) throw new HuskError(`invalid ${file}: root: a container needs root.path`, { code: ErrorCode.InvalidArgument });
  if (!spec.process) throw new HuskError(`invalid ${file}: process: a container needs a process`, { code: ErrorCode.InvalidArgument });
  const rootfs = isAbsolute(spec.root.path) ? spec.root.path : resolve(path, spec.root.path);
  try {
    if (!statSync(rootfs).isDirectory()) throw new Error("not a directory");
  } catch (e) {
    throw new HuskError(`rootfs ${rootfs} of bundle ${path}: ${(e as NodeJS.ErrnoException).code ?? errorMessage(e)}`, { code: ErrorCode.InvalidArgument });
  }
  return { path, spec, rootfs };
}
