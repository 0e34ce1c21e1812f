import { connect } from "node:net";
import type { Duplex } from "node:stream";
import { HuskError, ErrorCode } from "../core/index.ts";

// A unix socket as a byte stream, with a deadline on the connect.
export function dialUnix(path: string, timeoutMs = 5000): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new HuskError(`agent socket ${path}: no answer within ${timeoutMs} ms`, { code: ErrorCode.DeadlineExceeded }));
    }, timeoutMs);
    sock.once("connect", () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once("error", (e) => {
      clearTimeout(timer);
      reject(new HuskError(`cannot reach agent at ${path}: ${e.message}`, { code: ErrorCode.Unavailable }));
    });
  });
}
