import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_CAPABILITIES, Engine, agentService } from "../../lib/agent/index.ts";
import { ErrorCode, HuskError } from "../../lib/core/index.ts";
import { CONTAINER_STATUSES } from "../../lib/oci/index.ts";
import {
  CONNECT_CODE,
  GetContainerStateResponse_Status as Status,
  connectAgent,
  fromConnectError,
  statusFromMsg,
  statusToMsg,
  toConnectError,
  type AgentClient,
} from "../../lib/protocol/index.ts";
import { busyboxSpec, makeBusyboxRootfs } from "../helpers/bundle.ts";
import { fakeAgent } from "./fake-agent.ts";
import { TRANSPORTS, servedPerTest } from "./harness.ts";

const CODES = Object.values(ErrorCode);

describe("ErrorCode <-> Connect code", () => {
  it("is a bijection over the enum: one Connect code per ErrorCode, and back", () => {
    expect(Object.keys(CONNECT_CODE).sort()).toEqual([...CODES].sort());
    expect(new Set(Object.values(CONNECT_CODE)).size).toBe(CODES.length);
    for (const code of CODES) {
      const wire = toConnectError(new HuskError(`failed with ${code}`, { code }));
      expect(wire.code).toBe(CONNECT_CODE[code]);
      const back = fromConnectError(wire);
      expect(back).toBeInstanceOf(HuskError);
      expect(back.code).toBe(code);
      expect(back.message).toBe(`failed with ${code}`);
    }
  });

  it("a HuskError without a code is Unknown; anything else is a bug (Internal)", () => {
    expect(toConnectError(new HuskError("plain")).code).toBe(Code.Unknown);
    expect(toConnectError(new TypeError("x is undefined")).code).toBe(Code.Internal);
    expect(toConnectError("thrown string").rawMessage).toBe("thrown string");
  });

  it("passes a ConnectError through, and maps codes husk never sends to Unknown", () => {
    const own = new ConnectError("as is", Code.Aborted);
    expect(toConnectError(own)).toBe(own);
    for (const c of [Code.Aborted, Code.OutOfRange, Code.Unauthenticated])
      expect(fromConnectError(new ConnectError("m", c)).code).toBe(ErrorCode.Unknown);
  });
});

const start = servedPerTest();

describe.each(TRANSPORTS)("errors reach the client as HuskErrors over %s", (kind) => {
  it("from a unary call and from the middle of a stream", async () => {
    const s = start(kind, fakeAgent());
    const client = await connectAgent(s.target, { sandboxId: "sb-e" });
    const unary = await client.rpc.startContainer({ containerId: "nope" }).catch((e) => e);
    expect(unary).toBeInstanceOf(HuskError);
    expect(unary).toMatchObject({ code: ErrorCode.NotFound, message: 'container "nope" does not exist' });
    const stream = await (async () => {
      for await (const _ of client.rpc.streamOutput({ containerId: "nope" }));
    })().catch((e) => e);
    expect(stream).toBeInstanceOf(HuskError);
    expect(stream).toMatchObject({ code: ErrorCode.NotFound, message: 'container "nope" does not exist' });
    client.close();
  });

  it("an agent without 'container-state' refuses GetContainerState before the call leaves", async () => {
    const s = start(kind, fakeAgent(), { agentVersion: "0.1.0", capabilities: ["health", "containers", "stdio"] });
    const client = await connectAgent(s.target, { sandboxId: "sb-old" });
    const err = await client.rpc.getContainerState({ containerId: "c1" }).catch((e) => e);
    expect(err).toBeInstanceOf(HuskError);
    expect(err.code).toBe(ErrorCode.Unimplemented);
    expect(err.message).toBe("agent 0.1.0 in sandbox sb-old lacks capability 'container-state'; recreate the sandbox to use it");
    expect(client.has("container-state")).toBe(false);
    client.close();
  });
});

// The real agent service over a real engine (runc): codes chosen in the
// engine arrive unchanged.
describe.each(TRANSPORTS)("the agent's own codes over %s", (kind) => {
  let work: string;
  let engine: Engine;
  let rootfs: string;
  beforeAll(async () => {
    if (spawnSync("runc", ["--version"]).status !== 0) throw new Error("runc is not installed (bash .ci/setup)");
    work = mkdtempSync("/tmp/husk-errors-");
    engine = await Engine.open({ stateDir: join(work, "state") });
    rootfs = makeBusyboxRootfs(join(work, "rootfs"));
  });
  afterAll(async () => {
    await engine?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const agent = () =>
    start(kind, agentService({ engine, guest: false, ociRuntime: "runc", ociRuntimeVersion: Promise.resolve("test") }), {
      capabilities: AGENT_CAPABILITIES,
    });
  const codeOf = (p: Promise<unknown>) => p.then(() => "resolved", (e: unknown) => (e instanceof HuskError ? e.code : e));
  const create = (client: AgentClient, id: string, args: string[]) =>
    client.rpc.createContainer({
      containerId: id,
      ociSpecJson: JSON.stringify(busyboxSpec({ args })),
      rootfs: { source: { case: "path", value: rootfs } },
    });

  it("not found, invalid argument, already exists, failed precondition", async () => {
    const client = await connectAgent(agent().target, { sandboxId: "sb-real" });
    const missing = await client.rpc.getContainerState({ containerId: "nope" }).catch((e) => e);
    expect(missing).toBeInstanceOf(HuskError);
    expect(missing).toMatchObject({ code: ErrorCode.NotFound, message: 'container "nope" does not exist' });
    expect(await codeOf(client.rpc.signalProcess({ containerId: "c1", signal: 99 }))).toBe(ErrorCode.NotFound);
    expect(await codeOf(create(client, "../escape", ["true"]))).toBe(ErrorCode.InvalidArgument);

    const id = `st-${kind}`;
    await create(client, id, ["sleep", "300"]);
    expect(await codeOf(create(client, id, ["true"]))).toBe(ErrorCode.AlreadyExists);
    expect(await codeOf(client.rpc.signalProcess({ containerId: id, signal: 99 }))).toBe(ErrorCode.InvalidArgument);
    expect(await codeOf(client.rpc.resumeContainer({ containerId: id }))).toBe(ErrorCode.FailedPrecondition);
    await expect(client.rpc.pauseContainer({ containerId: id })).rejects.toThrow(
      `container ${id} is created: only a running container can be paused`,
    );
    await client.rpc.removeContainer({ containerId: id, force: true });
    client.close();
  });

  it("GetContainerState follows a container from created to stopped", async () => {
    const client = await connectAgent(agent().target, { sandboxId: "sb-state" });
    const id = `life-${kind}`;
    const { pid } = await create(client, id, ["sleep", "300"]);
    expect(await client.rpc.getContainerState({ containerId: id })).toMatchObject({ status: Status.CREATED, pid, exitStatus: 0, signal: 0 });
    await client.rpc.startContainer({ containerId: id });
    expect((await client.rpc.getContainerState({ containerId: id })).status).toBe(Status.RUNNING);
    await client.rpc.pauseContainer({ containerId: id });
    expect((await client.rpc.getContainerState({ containerId: id })).status).toBe(Status.PAUSED);
    await client.rpc.resumeContainer({ containerId: id });
    await client.rpc.execProcess({ containerId: id, execId: "e1", args: ["true"] });
    await client.rpc.waitProcess({ containerId: id, execId: "e1" });
    await client.rpc.signalProcess({ containerId: id, signal: 9 });
    await client.rpc.waitProcess({ containerId: id });
    expect(await client.rpc.getContainerState({ containerId: id })).toMatchObject({
      status: Status.STOPPED,
      pid,
      exitStatus: 137,
      signal: 9,
      execIds: ["e1"],
    });
    expect(statusFromMsg((await client.rpc.getContainerState({ containerId: id })).status)).toBe("stopped");
    await expect(client.rpc.startContainer({ containerId: id })).rejects.toThrow(
      `container ${id} is stopped: only a created container can be started`,
    );
    await client.rpc.removeContainer({ containerId: id });
    expect(await codeOf(client.rpc.getContainerState({ containerId: id }))).toBe(ErrorCode.NotFound);
    client.close();
  });
});

describe("container status on the wire", () => {
  it("maps every OCI status to its own enum value and back", () => {
    for (const s of CONTAINER_STATUSES) expect(statusFromMsg(statusToMsg(s))).toBe(s);
    expect(new Set(CONTAINER_STATUSES.map(statusToMsg)).size).toBe(CONTAINER_STATUSES.length);
    expect(statusFromMsg(Status.UNSPECIFIED)).toBeUndefined();
  });
});
