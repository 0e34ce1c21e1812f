import {
  closeFd,
  getWindowSize,
  makeRaw,
  openPty,
  restoreTermios,
  sendFd,
  setControllingTty,
  setWindowSize,
} from "../sys/index.ts";
import { HuskError, errorMessage } from "./errors.ts";

// Host-side terminals. The container's own pty lives with the agent (in the
// guest for a VM); the host gets a pty of its own whose master goes to the
// caller's --console-socket and whose slave the shim relays to the agent.
// The FFI lives in one place (lib/sys); this is the runtime's view of it.

export { closeFd, getWindowSize, makeRaw, restoreTermios, setControllingTty, setWindowSize };

// runc's console-socket contract: a new pty's master goes over socketPath
// with SCM_RIGHTS and is ours no longer. Returns the slave, in raw mode so
// bytes pass through unchanged (the container's pty does the line discipline).
export function handOverTerminal(socketPath: string): number {
  let pty;
  try {
    pty = openPty();
  } catch (e) {
    throw new HuskError(`cannot open a terminal: ${errorMessage(e)}`);
  }
  try {
    makeRaw(pty.slave);
    sendFd(socketPath, pty.master, pty.path);
    return pty.slave;
  } catch (e) {
    closeFd(pty.slave);
    throw new HuskError(`cannot send the terminal to console socket ${socketPath}: ${errorMessage(e)}`);
  } finally {
    closeFd(pty.master);
  }
}

// Calls cb with fd's terminal size now and on every SIGWINCH (which the
// kernel sends to the terminal's foreground process group), when it changed.
// 0x0 means the caller has not sized it yet and is not passed on.
export function watchWindowSize(fd: number, cb: (rows: number, cols: number) => void): void {
  let last = "";
  const check = () => {
    const { rows, cols } = getWindowSize(fd);
    if (!rows || !cols || `${rows}x${cols}` === last) return;
    last = `${rows}x${cols}`;
    cb(rows, cols);
  };
  process.on("SIGWINCH", check);
  check();
}
