import { dlopen, FFIType, ptr, read } from "bun:ffi";
import { closeSync, ftruncateSync, openSync } from "node:fs";
import { basename, dirname } from "node:path";

// The one libc binding: the few calls Bun has no API for. Child subreaping,
// reaping one pid without touching Bun's own children, pipes we own, receiving
// a pty master over a unix socket (SCM_RIGHTS), the host's end of that
// contract (new ptys, sending the master, raw mode), and flock for sandbox
// locks. x86_64/aarch64 Linux layouts. Bottom layer: imports nothing from lib/,
// so failures are SysError (errno attached) for callers to word as they like.

const { i32, i64, u32, u64, ptr: P } = FFIType;

const SIGNATURES = {
  prctl: { args: [i32, u64, u64, u64, u64], returns: i32 },
  waitpid: { args: [i32, P, i32], returns: i32 },
  pipe2: { args: [P, i32], returns: i32 },
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, P, u32], returns: i32 },
  listen: { args: [i32, i32], returns: i32 },
  accept4: { args: [i32, P, P, i32], returns: i32 },
  recvmsg: { args: [i32, P, i32], returns: i64 },
  ioctl: { args: [i32, u64, P], returns: i32 },
  fcntl: { args: [i32, i32, i32], returns: i32 },
  posix_openpt: { args: [i32], returns: i32 },
  grantpt: { args: [i32], returns: i32 },
  unlockpt: { args: [i32], returns: i32 },
  ptsname_r: { args: [i32, P, u64], returns: i32 },
  connect: { args: [i32, P, u32], returns: i32 },
  sendmsg: { args: [i32, P, i32], returns: i64 },
  tcgetattr: { args: [i32, P], returns: i32 },
  tcsetattr: { args: [i32, i32, P], returns: i32 },
  cfmakeraw: { args: [P], returns: FFIType.void },
  flock: { args: [i32, i32], returns: i32 },
  clock_gettime: { args: [i32, P], returns: i32 },
  poll: { args: [P, u64, i32], returns: i32 },
  clock_settime: { args: [i32, P], returns: i32 },
  mount: { args: [P, P, P, u64, P], returns: i32 },
  umount2: { args: [P, i32], returns: i32 },
  memfd_create: { args: [P, u32], returns: i32 },
  lseek: { args: [i32, i64, i32], returns: i64 },
  __errno_location: { args: [], returns: P },
  strerror: { args: [i32], returns: FFIType.cstring },
} as const;

const openLibc = () => dlopen("libc.so.6", SIGNATURES).symbols;

// Bound on first use, so importing this module costs no dlopen: commands that
// never lock or touch a terminal never pay for it.
let symbols: ReturnType<typeof openLibc> | undefined;
const c = (): ReturnType<typeof openLibc> => (symbols ??= openLibc());

const PR_SET_CHILD_SUBREAPER = 36;
const WNOHANG = 1;
const O_CLOEXEC = 0o2000000;
const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_CMSG_CLOEXEC = 0x40000000;
const TIOCSWINSZ = 0x5414;
const TIOCGWINSZ = 0x5413;
const TIOCSCTTY = 0x540e;
const O_RDWR = 2;
const O_NOCTTY = 0o400;
const O_DIRECTORY = 0o200000;
const O_PATH = 0o10000000;
const TCSANOW = 0;
const F_DUPFD_CLOEXEC = 1030;
const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
export const EAGAIN = 11; // also EWOULDBLOCK
export const ECHILD = 10;
export const EINTR = 4;

export class SysError extends Error {
  readonly reason: string; // strerror's words, for messages that name no errno
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    const reason = String(c().strerror(errno));
    super(`${call}: ${reason} (errno ${errno})`);
    this.reason = reason;
  }
}

const errno = (): number => read.i32(c().__errno_location()!, 0);

function check(call: string, rc: number | bigint): number {
  if (Number(rc) < 0) throw new SysError(call, errno());
  return Number(rc);
}

// Orphaned descendants (runc's container init, detached execs) are reparented
// to us instead of pid 1, so we can collect their exit status.
export function becomeSubreaper(): void {
  check("prctl(PR_SET_CHILD_SUBREAPER)", c().prctl(PR_SET_CHILD_SUBREAPER, 1n, 0n, 0n, 0n));
}

export type WaitResult = { done: false } | { done: true; status: number } | { done: true; gone: true };

// waitpid(pid, WNOHANG) for one pid only: Bun reaps its own children by pid,
// so asking for a specific pid never takes a status Bun is waiting for.
export function tryReap(pid: number): WaitResult {
  const status = new Int32Array(1);
  for (;;) {
    const rc = c().waitpid(pid, ptr(status), WNOHANG);
    if (rc === pid) return { done: true, status: status[0]! };
    if (rc === 0) return { done: false };
    const e = errno();
    if (e === EINTR) continue;
    if (e === ECHILD) return { done: true, gone: true };
    throw new SysError("waitpid", e);
  }
}

// Shell convention: the exit code, or 128 + signal number when killed.
export function decodeWaitStatus(status: number): { exitCode: number; signal?: number } {
  const sig = status & 0x7f;
  if (sig === 0) return { exitCode: (status >> 8) & 0xff };
  return { exitCode: 128 + sig, signal: sig };
}

export function pipe(): [readFd: number, writeFd: number] {
  const fds = new Int32Array(2);
  check("pipe2", c().pipe2(ptr(fds), O_CLOEXEC));
  return [fds[0]!, fds[1]!];
}

export function closeFd(fd: number | undefined): void {
  if (fd === undefined || fd < 0) return;
  try {
    closeSync(fd);
  } catch {
    // already closed: nothing to release
  }
}

// struct sockaddr_un for path, sized to the path and its NUL.
function sockaddrUn(call: string, path: string): Buffer {
  const encoded = Buffer.from(path);
  if (encoded.length >= 108) throw new SysError(`${call} ${path}: path too long`, 36);
  const addr = Buffer.alloc(2 + encoded.length + 1);
  addr.writeUInt16LE(AF_UNIX, 0);
  encoded.copy(addr, 2);
  return addr;
}

// Calls use(address of path). A path longer than sun_path (108 bytes: deep
// roots, 64-character container ids) is reached through an fd on its directory.
function withUnixAddress<T>(call: string, path: string, use: (addr: Buffer) => T): T {
  if (Buffer.byteLength(path) < 108) return use(sockaddrUn(call, path));
  let dir: number;
  try {
    dir = openSync(dirname(path), O_PATH | O_DIRECTORY | O_CLOEXEC);
  } catch (e) {
    throw new SysError(`${call} ${path}: open ${dirname(path)}`, Math.abs((e as NodeJS.ErrnoException).errno ?? 0));
  }
  try {
    return use(sockaddrUn(call, `/proc/self/fd/${dir}/${basename(path)}`));
  } finally {
    closeFd(dir);
  }
}

// A listening, non-blocking unix socket at path (runc's --console-socket).
export function listenUnix(path: string): number {
  const fd = check("socket", c().socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  try {
    withUnixAddress("bind", path, (addr) => check(`bind ${path}`, c().bind(fd, ptr(addr), addr.length)));
    check("listen", c().listen(fd, 4));
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  return fd;
}

const AF_VSOCK = 40;
const VMADDR_CID_ANY = 0xffffffff;

// A listening AF_VSOCK socket on `port` for any CID: the guest end of a
// vsock agent channel (cloud-hypervisor's hybrid vsock, QEMU's vhost-vsock).
export function listenVsock(port: number): number {
  const fd = check("socket(AF_VSOCK)", c().socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  const addr = Buffer.alloc(16); // struct sockaddr_vm
  addr.writeUInt16LE(AF_VSOCK, 0);
  addr.writeUInt32LE(port, 4);
  addr.writeUInt32LE(VMADDR_CID_ANY, 8);
  try {
    check(`bind vsock port ${port}`, c().bind(fd, ptr(addr), addr.length));
    check("listen", c().listen(fd, 8));
  } catch (e) {
    closeFd(fd);
    throw e;
  }
  return fd;
}

// One pending connection as a blocking fd, or undefined when none is waiting.
export function acceptConnection(listenFd: number): number | undefined {
  const conn = c().accept4(listenFd, null, null, SOCK_CLOEXEC);
  if (conn >= 0) return conn;
  const e = errno();
  if (e === EAGAIN) return undefined;
  throw new SysError("accept4", e);
}

// Accepts one pending connection and takes the fd it carries. undefined when
// no client connected yet (EAGAIN) or it sent no fd.
export function receiveFd(listenFd: number): number | undefined {
  const conn = c().accept4(listenFd, null, null, SOCK_CLOEXEC);
  if (conn < 0) {
    const e = errno();
    if (e === EAGAIN) return undefined;
    throw new SysError("accept4", e);
  }
  try {
    return recvRights(conn);
  } finally {
    closeFd(conn);
  }
}

// struct msghdr with one iovec over data; keep the returned buffers alive
// for the duration of the call (the header holds raw pointers to them).
function messageHeader(data: Buffer, control: Buffer): { msg: Buffer; iov: Buffer } {
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(BigInt(ptr(data)), 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  const msg = Buffer.alloc(56);
  msg.writeBigUInt64LE(BigInt(ptr(iov)), 16);
  msg.writeBigUInt64LE(1n, 24);
  msg.writeBigUInt64LE(BigInt(ptr(control)), 32);
  msg.writeBigUInt64LE(BigInt(control.length), 40);
  return { msg, iov };
}

// msg holds iov only as a raw address: the collector must not free iov before
// the call that reads it has returned.
let kept: unknown;
function keepAlive(b: Buffer): void {
  kept = b;
  kept = undefined;
}

function recvRights(conn: number): number | undefined {
  const data = Buffer.alloc(4096);
  const control = Buffer.alloc(64); // CMSG_SPACE(sizeof(int)) is 24
  const { msg, iov } = messageHeader(data, control);
  for (;;) {
    const n = Number(c().recvmsg(conn, ptr(msg), MSG_CMSG_CLOEXEC));
    if (n < 0 && errno() === EINTR) continue;
    check("recvmsg", n);
    break;
  }
  keepAlive(iov);
  const controlLen = Number(msg.readBigUInt64LE(40));
  if (controlLen < 20) return undefined;
  const level = control.readInt32LE(8);
  const type = control.readInt32LE(12);
  if (level !== SOL_SOCKET || type !== SCM_RIGHTS) return undefined;
  return control.readInt32LE(16);
}

export function setWindowSize(fd: number, rows: number, cols: number): void {
  const ws = new Uint16Array([rows, cols, 0, 0]);
  check("ioctl(TIOCSWINSZ)", c().ioctl(fd, BigInt(TIOCSWINSZ), ptr(ws)));
}

// A second descriptor for the same open file, for a reader that closes its own.
export function dupFd(fd: number): number {
  return check("fcntl(F_DUPFD_CLOEXEC)", c().fcntl(fd, F_DUPFD_CLOEXEC, 0));
}

// O_NONBLOCK on the open file (every dup of fd shares it). A pty master read
// through Bun.file(fd).stream() is then polled on the event loop; a blocking
// one is read by a thread of Bun's small fs pool, and two such readers (a pty
// and the agent's virtio-serial port) leave no thread for any other fs call.
export function setNonBlocking(fd: number): void {
  const flags = check("fcntl(F_GETFL)", c().fcntl(fd, F_GETFL, 0));
  check("fcntl(F_SETFL)", c().fcntl(fd, F_SETFL, flags | O_NONBLOCK));
}

// ---- host-side terminals (the shim's end of a console socket) ----

export interface PtyPair {
  master: number;
  slave: number;
  path: string;
}

// A new pseudo-terminal: posix_openpt + grantpt + unlockpt + ptsname_r, and
// the slave opened without becoming anyone's controlling terminal.
export function openPty(): PtyPair {
  const master = check("posix_openpt", c().posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  try {
    check("grantpt", c().grantpt(master));
    check("unlockpt", c().unlockpt(master));
    const name = Buffer.alloc(128);
    const rc = c().ptsname_r(master, ptr(name), BigInt(name.length));
    if (rc !== 0) throw new SysError("ptsname_r", rc);
    const path = name.toString("utf8", 0, name.indexOf(0));
    return { master, slave: openSync(path, O_RDWR | O_NOCTTY), path };
  } catch (e) {
    closeFd(master);
    throw e;
  }
}

// Connects to the unix socket at path and sends fd with SCM_RIGHTS, with
// payload as the message bytes (runc sends the terminal's name).
export function sendFd(path: string, fd: number, payload: string): void {
  const sock = check("socket", c().socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  try {
    withUnixAddress("connect", path, (addr) => check(`connect ${path}`, c().connect(sock, ptr(addr), addr.length)));
    const data = Buffer.from(payload || "\0");
    const control = Buffer.alloc(24); // CMSG_SPACE(sizeof(int))
    control.writeBigUInt64LE(20n, 0); // CMSG_LEN(sizeof(int))
    control.writeInt32LE(SOL_SOCKET, 8);
    control.writeInt32LE(SCM_RIGHTS, 12);
    control.writeInt32LE(fd, 16);
    const { msg, iov } = messageHeader(data, control);
    for (;;) {
      const n = Number(c().sendmsg(sock, ptr(msg), 0));
      if (n < 0 && errno() === EINTR) continue;
      check("sendmsg", n);
      break;
    }
    keepAlive(iov);
  } finally {
    closeFd(sock);
  }
}

// No line discipline on fd: bytes pass unchanged both ways (cfmakeraw).
// Returns the settings it replaced, for restoreTermios.
export function makeRaw(fd: number): Buffer {
  const saved = Buffer.alloc(64); // struct termios is 60 bytes on glibc
  check("tcgetattr", c().tcgetattr(fd, ptr(saved)));
  const raw = Buffer.from(saved);
  c().cfmakeraw(ptr(raw));
  check("tcsetattr", c().tcsetattr(fd, TCSANOW, ptr(raw)));
  return saved;
}

export function restoreTermios(fd: number, saved: Buffer): void {
  check("tcsetattr", c().tcsetattr(fd, TCSANOW, ptr(saved)));
}

// Makes the terminal on fd the caller's controlling terminal, so a resize
// on its master delivers SIGWINCH. The caller must lead a session of its own.
export function setControllingTty(fd: number): void {
  check("ioctl(TIOCSCTTY)", c().ioctl(fd, BigInt(TIOCSCTTY), null));
}

export function getWindowSize(fd: number): { rows: number; cols: number } {
  const ws = new Uint16Array(4);
  check("ioctl(TIOCGWINSZ)", c().ioctl(fd, BigInt(TIOCGWINSZ), ptr(ws)));
  return { rows: ws[0]!, cols: ws[1]! };
}

// flock(LOCK_EX | LOCK_NB) on fd: true when taken, false when another open
// file description holds it. Never blocks, so a caller can poll to a deadline.
export function tryLockExclusive(fd: number): boolean {
  for (;;) {
    if (c().flock(fd, LOCK_EX | LOCK_NB) === 0) return true;
    const e = errno();
    if (e === EAGAIN) return false;
    if (e !== EINTR) throw new SysError("flock", e);
  }
}

const POLLIN = 1;

// Whether a read on fd would return data now (poll(2), no wait). A hang-up
// alone (a virtio-serial port with no host) is not input.
export function hasInput(fd: number): boolean {
  const pfd = new Int32Array([fd, POLLIN]); // struct pollfd { int fd; short events; short revents; }
  const n = c().poll(ptr(pfd), 1n, 0);
  if (n < 0 && errno() !== EINTR) throw new SysError("poll", errno());
  return n > 0 && ((pfd[1]! >>> 16) & POLLIN) !== 0;
}

const CLOCK_REALTIME = 0;
const NS = 1_000_000_000n;

export function realtimeNs(): bigint {
  const ts = new BigInt64Array(2);
  check("clock_gettime", c().clock_gettime(CLOCK_REALTIME, ptr(ts)));
  return ts[0]! * NS + ts[1]!;
}

export function setRealtimeNs(ns: bigint): void {
  const ts = new BigInt64Array([ns / NS, ns % NS]);
  check("clock_settime", c().clock_settime(CLOCK_REALTIME, ptr(ts)));
}

// RNDADDENTROPY: struct rand_pool_info { int entropy_count; int buf_size; u32 buf[]; },
// crediting 8 bits a byte; RNDRESEEDCRNG makes the kernel's CRNG use it now.
const RNDADDENTROPY = 0x40085203;
const RNDRESEEDCRNG = 0x5207;

export function reseedRandom(entropy: Uint8Array): void {
  const info = new Uint8Array(8 + entropy.length);
  new DataView(info.buffer).setInt32(0, entropy.length * 8, true);
  new DataView(info.buffer).setInt32(4, entropy.length, true);
  info.set(entropy, 8);
  const fd = openSync("/dev/urandom", "w");
  try {
    check("ioctl(RNDADDENTROPY)", c().ioctl(fd, BigInt(RNDADDENTROPY), ptr(info)));
    check("ioctl(RNDRESEEDCRNG)", c().ioctl(fd, BigInt(RNDRESEEDCRNG), null));
  } finally {
    closeSync(fd);
  }
}

// flock(LOCK_UN). Best effort: closing the fd drops the lock anyway.
export function unlock(fd: number): void {
  c().flock(fd, LOCK_UN);
}

const cstring = (s: string) => Buffer.from(`${s}\0`);
const MNT_DETACH = 2;

// mount(2) of a filesystem that takes its options as data (tmpfs, overlay):
// in-process, where spawning mount(8) costs ~100 ms in a TCG guest.
export function mountFs(fstype: string, source: string, target: string, data: string): void {
  const [src, dst, type, opts] = [source, target, fstype, data].map(cstring);
  check(`mount ${fstype} on ${target}`, c().mount(ptr(src!), ptr(dst!), ptr(type!), 0n, ptr(opts!)));
}

// umount2(2); lazy detaches a busy mount now, freed when its last user goes.
export function unmount(target: string, lazy = false): void {
  const t = cstring(target);
  check(`umount ${target}`, c().umount2(ptr(t), lazy ? MNT_DETACH : 0));
}

const MFD_CLOEXEC = 1;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const ENXIO = 6;

// An anonymous memory file (memfd_create(2)) of `size` bytes, all holes: a
// VMM maps it as guest RAM, and a child gets it only through its stdio.
export function memoryFile(name: string, size: number): number {
  const fd = check(`memfd_create ${name}`, c().memfd_create(ptr(cstring(name)), MFD_CLOEXEC));
  ftruncateSync(fd, size);
  return fd;
}

// Where a sparse file holds data (lseek(2) SEEK_DATA/SEEK_HOLE), as
// [offset, length] pairs: a copy that skips the holes keeps them holes.
export function dataSegments(fd: number, size: number): [number, number][] {
  const segments: [number, number][] = [];
  for (let at = 0; at < size; ) {
    const start = Number(c().lseek(fd, BigInt(at), SEEK_DATA));
    if (start < 0) {
      if (errno() === ENXIO) break; // only a hole is left
      throw new SysError("lseek SEEK_DATA", errno());
    }
    const end = Math.min(size, check("lseek SEEK_HOLE", c().lseek(fd, BigInt(start), SEEK_HOLE)));
    segments.push([start, end - start]);
    at = end;
  }
  return segments;
}
