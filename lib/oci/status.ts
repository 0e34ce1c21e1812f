import * as v from "valibot";
import { ErrorCode, HuskError } from "../core/index.ts";

// A container's OCI status, the moves between statuses and the statuses each
// operation accepts: the one place these rules live, for the host and the
// agent alike (as youki's state.rs). The rules follow runc.

export const ContainerStatusSchema = v.picklist(["creating", "created", "running", "paused", "stopped"]);
export type ContainerStatus = v.InferOutput<typeof ContainerStatusSchema>;
export const CONTAINER_STATUSES: readonly ContainerStatus[] = ContainerStatusSchema.options;

// Where each status may go. Every status but stopped may end in stopped: a
// failed create, a kill, or the init exiting on its own.
export const TRANSITIONS: Readonly<Record<ContainerStatus, readonly ContainerStatus[]>> = {
  creating: ["created", "stopped"],
  created: ["running", "stopped"],
  running: ["paused", "stopped"],
  paused: ["running", "stopped"],
  stopped: [],
};

export const canTransition = (from: ContainerStatus, to: ContainerStatus): boolean => TRANSITIONS[from].includes(to);

// `to` when the move is allowed, else `from`: a container that stopped while
// runc was starting or resuming it stays stopped.
export const nextStatus = (from: ContainerStatus, to: ContainerStatus): ContainerStatus =>
  canTransition(from, to) ? to : from;

// A live container has an init process (maybe frozen, maybe not yet started).
export const isLive = (s: ContainerStatus): boolean => s === "created" || s === "running" || s === "paused";

interface OperationRule {
  allowed: readonly ContainerStatus[];
  withForce?: readonly ContainerStatus[]; // also allowed with force
  withAll?: readonly ContainerStatus[]; // also allowed with all
  to?: ContainerStatus; // the status the operation leads to
  refusal: string; // why it is refused, after "container <id> is <status>: "
}

// The statuses each operation accepts, as runc checks them.
export const OPERATIONS = {
  start: { allowed: ["created"], to: "running", refusal: "only a created container can be started" },
  pause: { allowed: ["running"], to: "paused", refusal: "only a running container can be paused" },
  resume: { allowed: ["paused"], to: "running", refusal: "only a paused container can be resumed" },
  // runc refuses a paused one unless --ignore-paused, which we do not offer.
  exec: { allowed: ["created", "running"], refusal: "exec needs a created or running container" },
  // runc ps only reads the cgroup: a stopped container lists what is left in it.
  ps: { allowed: ["created", "running", "paused", "stopped"], refusal: "it has no processes yet" },
  stats: { allowed: ["created", "running", "paused"], refusal: "it has no statistics" },
  update: { allowed: ["created", "running", "paused"], refusal: "only a live container can be updated" },
  // A stopped init's pid may be reused; --all signals what is left in the cgroup.
  kill: {
    allowed: ["created", "running", "paused"],
    withAll: ["stopped"],
    refusal: "it has no process to signal (signal all processes to reach any left in its cgroup)",
  },
  delete: {
    allowed: ["created", "stopped"],
    withForce: ["creating", "running", "paused"],
    refusal: "stop it first or delete with force",
  },
} as const satisfies Record<string, OperationRule>;
export type ContainerOperation = keyof typeof OPERATIONS;

export interface OperationOptions {
  force?: boolean;
  all?: boolean;
}

export function operationAllowed(op: ContainerOperation, status: ContainerStatus, opts: OperationOptions = {}): boolean {
  const rule: OperationRule = OPERATIONS[op];
  return (
    rule.allowed.includes(status) ||
    (opts.force === true && (rule.withForce?.includes(status) ?? false)) ||
    (opts.all === true && (rule.withAll?.includes(status) ?? false))
  );
}

// Throws HuskError(FailedPrecondition) when `op` may not run on a container in `status`.
export function checkOperation(
  containerId: string,
  status: ContainerStatus,
  op: ContainerOperation,
  opts: OperationOptions = {},
): void {
  if (operationAllowed(op, status, opts)) return;
  throw new HuskError(`container ${containerId} is ${status}: ${OPERATIONS[op].refusal}`, {
    code: ErrorCode.FailedPrecondition,
  });
}
