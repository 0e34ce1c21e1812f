import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { ErrorCode, HuskError, errorMessage } from "../../core/index.ts";
import { closeFd, listenUnix, receiveFd } from "../../sys/index.ts";

// runc's --console-socket: runc connects, sends the pty master with
// SCM_RIGHTS and closes before `runc create`/`runc exec -d` exits, so the
// connection is already queued when runc is done and accept never has to wait.
export class ConsoleSocket {
  private constructor(
    readonly path: string,
    private fd: number,
    private readonly tempDir?: string,
  ) {}

  // runc dials the path as given, so it must fit sun_path (108 bytes); a deep
  // state dir with a 64-character id does not, and goes to a private temp dir.
  static listen(wanted: string): ConsoleSocket {
    const tempDir = Buffer.byteLength(wanted) < 108 ? undefined : mkdtempSync(join(tmpdir(), "husk-con-"));
    const path = tempDir ? join(tempDir, basename(wanted)) : wanted;
    rmSync(path, { force: true });
    try {
      return new ConsoleSocket(path, listenUnix(path), tempDir);
    } catch (e) {
      if (tempDir) rmSync(tempDir, { recursive: true, force: true });
      throw new HuskError(`cannot listen on console socket ${path}: ${errorMessage(e)}`, { code: ErrorCode.Internal });
    }
  }

  // Call after runc succeeded; the pty master it sent.
  takeMaster(): number {
    const fd = receiveFd(this.fd);
    if (fd === undefined)
      throw new HuskError(`the OCI runtime sent no terminal over ${this.path}`, { code: ErrorCode.Internal });
    return fd;
  }

  close(): void {
    closeFd(this.fd);
    this.fd = -1;
    rmSync(this.path, { force: true });
    if (this.tempDir) rmSync(this.tempDir, { recursive: true, force: true });
  }
}
