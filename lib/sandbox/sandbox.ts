import { randomUUID } from "node:crypto";
import { loadBundle } from "../oci/index.ts";
import { OutputStream } from "../protocol/index.ts";
import type { AgentClient } from "../protocol/client/index.ts";
import { connect } from "./agent.ts";
import type { Context } from "./context.ts";
import { addContainer } from "./create.ts";
import { createSandbox, type SandboxOptions } from "./create-sandbox.ts";
import { deleteContainer } from "./delete.ts";
import { destroySandbox } from "./destroy-sandbox.ts";
import { startContainer } from "./start.ts";
import { waitExit, type ProcessRef } from "./stdio.ts";

export interface Output {
  stream: "stdout" | "stderr";
  data: Uint8Array;
}

// A process in a sandbox (a container's init, or one started by exec) as an
// embedding program sees it: output, stdin, signals, exit status.
export class SandboxProcess {
  constructor(
    protected readonly agent: AgentClient,
    readonly ref: ProcessRef,
  ) {}

  private get target() {
    return { containerId: this.ref.containerId, execId: this.ref.execId ?? "" };
  }

  async *output(): AsyncGenerator<Output> {
    const streams = [OutputStream.STDOUT, OutputStream.STDERR];
    for await (const m of this.agent.rpc.streamOutput({ ...this.target, streams }, { timeoutMs: 0 }))
      if (m.data.length) yield { stream: m.stream === OutputStream.STDERR ? "stderr" : "stdout", data: m.data };
  }

  async text(): Promise<string> {
    let s = "";
    for await (const o of this.output()) s += new TextDecoder().decode(o.data);
    return s;
  }

  async write(data: Uint8Array | string): Promise<void> {
    await this.agent.rpc.writeStdin({ ...this.target, data: typeof data === "string" ? new TextEncoder().encode(data) : data });
  }

  async closeStdin(): Promise<void> {
    await this.agent.rpc.closeStdin(this.target);
  }

  async signal(signal: number): Promise<void> {
    await this.agent.rpc.signalProcess({ ...this.target, signal });
  }

  // Exit status; 128+signal when a signal ended it.
  wait(): Promise<number> {
    return waitExit(this.agent, this.ref);
  }
}

export class SandboxContainer extends SandboxProcess {
  constructor(
    private readonly sandbox: Sandbox,
    agent: AgentClient,
    readonly id: string,
  ) {
    super(agent, { containerId: id });
  }

  start(): Promise<void> {
    return startContainer(this.sandbox.ctx, this.id);
  }

  async exec(args: string[], opts: { env?: string[]; cwd?: string } = {}): Promise<SandboxProcess> {
    const execId = randomUUID();
    await this.agent.rpc.execProcess({
      containerId: this.id, execId, args, env: opts.env ?? ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
      cwd: opts.cwd ?? "/", user: { uid: 0, gid: 0 }, openStdin: true,
    });
    return new SandboxProcess(this.agent, { containerId: this.id, execId });
  }

  delete(force = false): Promise<void> {
    return deleteContainer(this.sandbox.ctx, this.id, force);
  }
}

// The embedding API: a sandbox (VM, or agent process for `local`) and its
// containers, without the OCI CLI's shim processes.
export class Sandbox {
  private constructor(
    readonly ctx: Context,
    readonly id: string,
    private readonly agent: AgentClient,
  ) {}

  static async create(ctx: Context, opts: SandboxOptions): Promise<Sandbox> {
    const doc = await createSandbox(ctx, opts);
    return new Sandbox(ctx, doc.id, await connect(ctx, doc));
  }

  static async open(ctx: Context, id: string): Promise<Sandbox> {
    return new Sandbox(ctx, id, await connect(ctx, ctx.store.load(id)));
  }

  async createContainer(id: string, bundleDir: string): Promise<SandboxContainer> {
    await addContainer(this.ctx, this.id, id, loadBundle(bundleDir));
    return new SandboxContainer(this, this.agent, id);
  }

  container(id: string): SandboxContainer {
    return new SandboxContainer(this, this.agent, id);
  }

  async destroy(): Promise<void> {
    this.agent.close();
    await destroySandbox(this.ctx, this.id, { force: true });
  }
}
