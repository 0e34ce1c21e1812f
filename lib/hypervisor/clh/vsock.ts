import { connect, type Socket } from "node:net";
import { HuskError, errorMessage } from "../../core/index.ts";

// cloud-hypervisor's hybrid vsock: the guest's vsock device appears on the host
// as a unix socket. A host client connects, writes "CONNECT <port>\n" and gets
// "OK <host port>\n" once a guest listener on <port> accepted; from then on the
// socket is a plain byte stream to that listener.

const MAX_ANSWER_BYTES = 64; // "OK " + a u32 + "\n" fits many times over
const OK_LINE = /^OK \d+$/;

export function dialHybridVsock(path: string, port: number, timeoutMs = 5000): Promise<Socket> {
  const what = `hybrid vsock ${path} port ${port}`;
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let answer = Buffer.alloc(0);
    let settled = false;

    const fail = (msg: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      reject(new HuskError(`${what}: ${msg}`));
    };
    const timer = setTimeout(
      () => fail(`no answer to CONNECT within ${timeoutMs} ms (is the agent listening in the guest?)`),
      timeoutMs,
    );

    const onReadable = () => {
      let chunk: Buffer | null;
      while ((chunk = sock.read()) !== null) answer = Buffer.concat([answer, chunk]);
      const nl = answer.indexOf(0x0a);
      if (nl < 0) {
        if (answer.length > MAX_ANSWER_BYTES) fail(`answer without a line end: ${quote(answer)}`);
        return;
      }
      const line = answer.subarray(0, nl).toString("latin1");
      if (!OK_LINE.test(line)) return fail(`expected "OK <port>", got ${quote(answer.subarray(0, nl))}`);
      settled = true;
      clearTimeout(timer);
      cleanup();
      // Whatever followed the OK line already belongs to the protocol.
      const rest = answer.subarray(nl + 1);
      if (rest.length > 0) sock.unshift(rest);
      resolve(sock);
    };
    const onEnd = () =>
      fail(answer.length ? `connection closed after ${quote(answer)}` : "connection closed without an answer (no listener on that port?)");
    const onError = (e: Error) => fail(`cannot connect: ${errorMessage(e)}`);
    const cleanup = () => {
      sock.removeListener("readable", onReadable);
      sock.removeListener("end", onEnd);
      sock.removeListener("error", onError);
    };

    sock.once("connect", () => sock.write(`CONNECT ${port}\n`));
    sock.on("readable", onReadable);
    sock.on("end", onEnd);
    sock.on("error", onError);
  });
}

const quote = (b: Buffer): string => JSON.stringify(b.subarray(0, MAX_ANSWER_BYTES).toString("latin1"));
