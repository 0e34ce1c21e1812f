import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { ErrorCode, HuskError } from "../../lib/core/index.ts";
import {
  CONTAINER_STATUSES,
  ContainerStatusSchema,
  OPERATIONS,
  TRANSITIONS,
  canTransition,
  checkOperation,
  isLive,
  nextStatus,
  operationAllowed,
  type ContainerOperation,
  type ContainerStatus,
} from "../../lib/oci/index.ts";

// Which statuses each operation accepts, written out as runc behaves:
// [plain, with force, with all].
const EXPECTED: Record<ContainerOperation, [ContainerStatus[], ContainerStatus[], ContainerStatus[]]> = {
  start: [["created"], ["created"], ["created"]],
  pause: [["running"], ["running"], ["running"]],
  resume: [["paused"], ["paused"], ["paused"]],
  exec: [["created", "running"], ["created", "running"], ["created", "running"]],
  ps: [["created", "running", "paused", "stopped"], ["created", "running", "paused", "stopped"], ["created", "running", "paused", "stopped"]],
  stats: [["created", "running", "paused"], ["created", "running", "paused"], ["created", "running", "paused"]],
  update: [["created", "running", "paused"], ["created", "running", "paused"], ["created", "running", "paused"]],
  kill: [["created", "running", "paused"], ["created", "running", "paused"], ["created", "running", "paused", "stopped"]],
  delete: [["created", "stopped"], ["creating", "created", "running", "paused", "stopped"], ["created", "stopped"]],
};

const accepted = (op: ContainerOperation, opts: { force?: boolean; all?: boolean }) =>
  CONTAINER_STATUSES.filter((s) => operationAllowed(op, s, opts));

describe("container status", () => {
  it("is the OCI list, checked by a valibot schema", () => {
    expect(CONTAINER_STATUSES).toEqual(["creating", "created", "running", "paused", "stopped"]);
    expect(v.parse(ContainerStatusSchema, "paused")).toBe("paused");
    expect(v.safeParse(ContainerStatusSchema, "exited").success).toBe(false);
    expect(CONTAINER_STATUSES.filter(isLive)).toEqual(["created", "running", "paused"]);
  });

  it("moves only along the transitions; stopped is final", () => {
    expect(canTransition("created", "running")).toBe(true);
    expect(canTransition("running", "paused") && canTransition("paused", "running")).toBe(true);
    for (const s of CONTAINER_STATUSES.filter((s) => s !== "stopped")) expect(canTransition(s, "stopped")).toBe(true);
    expect(TRANSITIONS.stopped).toEqual([]);
    expect(canTransition("created", "paused")).toBe(false);
    expect(nextStatus("stopped", "running")).toBe("stopped"); // the init exited while runc started it
    expect(nextStatus("created", "running")).toBe("running");
  });

  it("each operation accepts the statuses runc accepts", () => {
    for (const op of Object.keys(EXPECTED) as ContainerOperation[]) {
      const [plain, force, all] = EXPECTED[op];
      expect(accepted(op, {}), op).toEqual(plain);
      expect(accepted(op, { force: true }), `${op} with force`).toEqual(force);
      expect(accepted(op, { all: true }), `${op} with all`).toEqual(all);
    }
    expect(Object.keys(OPERATIONS).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it("an operation that changes the status makes an allowed transition", () => {
    for (const [op, rule] of Object.entries(OPERATIONS)) {
      if (!("to" in rule)) continue;
      for (const from of rule.allowed) expect(canTransition(from, rule.to), `${op}: ${from} -> ${rule.to}`).toBe(true);
    }
  });

  it("refuses with FailedPrecondition and a message naming the container, its status and the rule", () => {
    const refusal = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return e;
      }
      throw new Error("no refusal");
    };
    const e = refusal(() => checkOperation("web", "running", "start"));
    expect(e).toBeInstanceOf(HuskError);
    expect(e).toMatchObject({ code: ErrorCode.FailedPrecondition, message: "container web is running: only a created container can be started" });
    expect(() => checkOperation("web", "running", "delete")).toThrow("container web is running: stop it first or delete with force");
    expect(() => checkOperation("web", "paused", "exec")).toThrow("container web is paused: exec needs a created or running container");
    expect(() => checkOperation("web", "stopped", "kill")).toThrow(/container web is stopped: it has no process to signal/);
    expect(() => checkOperation("web", "stopped", "kill", { all: true })).not.toThrow();
    expect(() => checkOperation("web", "paused", "delete", { force: true })).not.toThrow();
  });
});
