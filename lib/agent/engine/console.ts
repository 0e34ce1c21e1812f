import { rmSync } from "node:fs";
import { HuskError, errorMessage } from "../../core/index.ts";
import { closeFd, listenUnix, receiveFd } from "./libc.ts";

// runc's --console-socket: runc connects, sends the pty master with
// SCM_RIGHTS and closes before `runc create`/`runc exec -d` exits, so the
// connection is already queued when runc is done and accept never has to wait.
export class ConsoleSocket {
  private constructor(
    readonly path: string,
    private fd: number,
  ) {}

  static listen(path: string): ConsoleSocket {
    rmSync(path, { force: true });
    try {
      return new ConsoleSocket(path, listenUnix(path));
    } catch (e) {
      throw new HuskError(`cannot listen on console socket ${path}: ${errorMessage(e)}`);
    }
  }

  // Call after runc succeeded; the pty master it sent.
  takeMaster(): number {
    const fd = receiveFd(this.fd);
    if (fd === undefined) throw new HuskError(`the OCI runtime sent no terminal over ${this.path}`);
    return fd;
  }

  close(): void {
    closeFd(this.fd);
    this.fd = -1;
    rmSync(this.path, { force: true });
  }
}
