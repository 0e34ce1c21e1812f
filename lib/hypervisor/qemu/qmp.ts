import { connect } from "node:net";
import { HuskError } from "../../core/index.ts";

// A one-shot QMP session: greeting, qmp_capabilities, then the commands in
// turn. Events interleaved with replies are skipped.
export interface QmpCommand {
  execute: string;
  arguments?: Record<string, unknown>;
}

export function qmp(socket: string, commands: QmpCommand[], timeoutMs = 5000): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const sock = connect(socket);
    const results: unknown[] = [];
    const queue: QmpCommand[] = [{ execute: "qmp_capabilities" }, ...commands];
    let buf = "";
    let greeted = false;
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(results.slice(1));
    };
    const timer = setTimeout(() => finish(new HuskError(`QMP ${socket}: no answer within ${timeoutMs} ms`)), timeoutMs);
    const sendNext = () => {
      const next = queue[0];
      if (!next) return finish();
      sock.write(JSON.stringify(next) + "\n");
    };
    const onMessage = (msg: Record<string, unknown>) => {
      if ("QMP" in msg && !greeted) return (greeted = true), sendNext();
      if ("event" in msg) return;
      const cmd = queue.shift();
      if ("error" in msg) {
        const e = msg.error as { desc?: string };
        return finish(new HuskError(`QMP ${cmd?.execute} failed: ${e.desc ?? JSON.stringify(e)}`));
      }
      results.push(msg.return);
      sendNext();
    };
    sock.on("data", (chunk) => {
      buf += chunk.toString("utf8");
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0 && !done) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        try {
          onMessage(JSON.parse(line));
        } catch (e) {
          finish(new HuskError(`QMP ${socket}: unreadable reply: ${line.slice(0, 200)}`));
        }
      }
    });
    sock.on("error", (e) => finish(new HuskError(`cannot reach QMP socket ${socket}: ${e.message}`)));
    // `quit` closes the socket, possibly before its reply: that is success.
    sock.on("close", () => finish(queue.length === 1 && queue[0]!.execute === "quit" ? undefined : new HuskError(`QMP ${socket} closed the connection`)));
  });
}

export async function qmpStatus(socket: string, timeoutMs?: number): Promise<string> {
  const [r] = await qmp(socket, [{ execute: "query-status" }], timeoutMs);
  return (r as { status?: string })?.status ?? "unknown";
}

// Whether the guest holds the chardev's port open (virtio-serial): bytes sent
// before it does are lost, so the agent channel is dialled only after this.
export async function qmpPortOpen(socket: string, chardevId: string, timeoutMs?: number): Promise<boolean> {
  const [r] = await qmp(socket, [{ execute: "query-chardev" }], timeoutMs);
  const dev = (r as { label: string; "frontend-open"?: boolean }[]).find((c) => c.label === chardevId);
  return dev?.["frontend-open"] === true;
}
