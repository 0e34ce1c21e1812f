import * as v from "valibot";
import { HuskError, describeIssues, errorMessage } from "../../core/index.ts";

// cloud-hypervisor's REST API, spoken over its unix API socket
// (vmm/src/api/openapi/cloud-hypervisor.yaml: paths under /api/v1).

export const VM_STATES = ["Created", "Running", "Shutdown", "Paused", "BreakPoint"] as const;
export type ClhVmState = (typeof VM_STATES)[number];

const PingSchema = v.looseObject({
  version: v.string(),
  build_version: v.optional(v.string()),
  pid: v.optional(v.number()),
});
export type VmmPing = v.InferOutput<typeof PingSchema>;

const InfoSchema = v.looseObject({
  state: v.picklist(VM_STATES),
  config: v.looseObject({}),
});
export type VmInfo = v.InferOutput<typeof InfoSchema>;

// An error the API answered with; `status` lets callers accept the ones they expect.
export class ClhApiError extends HuskError {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface ClhApi {
  readonly socket: string;
  ping(timeoutMs?: number): Promise<VmmPing>;
  info(): Promise<VmInfo | undefined>; // undefined: no VM created
  put(endpoint: string, body?: unknown, timeoutMs?: number): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export function clhApi(socket: string): ClhApi {
  async function call(method: "GET" | "PUT", endpoint: string, body?: unknown, timeoutMs = DEFAULT_TIMEOUT_MS) {
    const what = `cloud-hypervisor ${method} /${endpoint}`;
    let res: Response;
    try {
      res = await fetch(`http://localhost/api/v1/${endpoint}`, {
        unix: socket,
        method,
        headers: body === undefined ? undefined : { "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      throw new HuskError(`${what}: cannot reach the API socket ${socket}: ${errorMessage(e)}`);
    }
    const text = await res.text();
    if (!res.ok) {
      const detail = text.trim() ? `: ${text.trim()}` : "";
      throw new ClhApiError(`${what} failed with HTTP ${res.status} ${res.statusText}${detail}`, res.status);
    }
    return text;
  }

  const parse = <S extends v.GenericSchema>(schema: S, endpoint: string, text: string): v.InferOutput<S> => {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new HuskError(`cloud-hypervisor /${endpoint} answered with invalid JSON: ${text.slice(0, 200)}`);
    }
    const parsed = v.safeParse(schema, raw);
    if (!parsed.success)
      throw new HuskError(`cloud-hypervisor /${endpoint} answered unexpectedly: ${describeIssues(parsed.issues)}`);
    return parsed.output;
  };

  return {
    socket,
    ping: async (timeoutMs) => parse(PingSchema, "vmm.ping", await call("GET", "vmm.ping", undefined, timeoutMs)),
    async info() {
      try {
        return parse(InfoSchema, "vm.info", await call("GET", "vm.info"));
      } catch (e) {
        if (e instanceof ClhApiError && e.status === 404) return undefined;
        throw e;
      }
    },
    async put(endpoint, body, timeoutMs) {
      await call("PUT", endpoint, body, timeoutMs);
    },
  };
}

// Checked after every state change: a 204 alone does not prove the VM got there.
export async function expectState(api: ClhApi, want: ClhVmState, after: string): Promise<void> {
  const info = await api.info();
  const got = info?.state ?? "not created";
  if (got !== want)
    throw new HuskError(`cloud-hypervisor: after ${after} the VM is ${got}, expected ${want}`);
}
