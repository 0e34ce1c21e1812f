import { lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmdirSync, rmSync, symlinkSync, unlinkSync } from "node:fs";
import { join } from "node:path";

// Which sandbox holds a container, in O(1): <root>/+containers/<container id>
// is a symbolic link whose target is the sandbox id ('+' cannot start an id,
// so the directory is never taken for a sandbox). Ids too long for a file
// name go by their hash ('#' cannot appear in an id either).
//
// It is a hint, for either store: an entry is believed only once the
// sandbox's document confirms it, and a stale one (its container gone, or
// removed by a release that keeps no index) is dropped when met. A root
// without the directory (one an older release made) is indexed on first use.
export const INDEX_DIR = "+containers";
const MAX_NAME_BYTES = 200;

const nameOf = (containerId: string) =>
  Buffer.byteLength(containerId) <= MAX_NAME_BYTES
    ? containerId
    : `#${new Bun.CryptoHasher("sha256").update(containerId).digest("hex")}`;

const code = (e: unknown) => (e as NodeJS.ErrnoException)?.code;

export class ContainerIndex {
  private readonly dir: string;
  constructor(root: string) {
    this.dir = join(root, INDEX_DIR);
  }

  exists(): boolean {
    try {
      return lstatSync(this.dir).isDirectory();
    } catch {
      return false;
    }
  }

  // Builds the whole index at once from (container, sandbox) pairs, then
  // moves it in place: a reader sees no index or a complete one.
  build(pairs: Iterable<[string, string]>): void {
    const tmp = `${this.dir}.${process.pid}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true, mode: 0o700 });
    for (const [c, s] of pairs) {
      try {
        symlinkSync(s, join(tmp, nameOf(c)));
      } catch {}
    }
    try {
      renameSync(tmp, this.dir);
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // another process built it first
    }
  }

  lookup(containerId: string): string | undefined {
    try {
      return readlinkSync(join(this.dir, nameOf(containerId)));
    } catch {
      return undefined;
    }
  }

  // Claims the name for sandboxId; false when another sandbox's entry is there.
  add(containerId: string, sandboxId: string): boolean {
    const path = join(this.dir, nameOf(containerId));
    try {
      symlinkSync(sandboxId, path);
      return true;
    } catch (e) {
      if (code(e) === "ENOENT") {
        mkdirSync(this.dir, { recursive: true, mode: 0o700 });
        return this.add(containerId, sandboxId);
      }
      if (code(e) !== "EEXIST") return false;
      return this.lookup(containerId) === sandboxId;
    }
  }

  // Removed when it holds nothing, so an emptied root is empty again.
  removeIfEmpty(): void {
    try {
      rmdirSync(this.dir);
    } catch {}
  }

  // Drops every entry that names sandboxId (reads the whole index).
  removeAllFor(sandboxId: string): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const n of names) {
      try {
        if (readlinkSync(join(this.dir, n)) === sandboxId) unlinkSync(join(this.dir, n));
      } catch {}
    }
  }

  // Drops the entry if it still names sandboxId (or any sandbox, without one).
  remove(containerId: string, sandboxId?: string): void {
    const path = join(this.dir, nameOf(containerId));
    if (sandboxId !== undefined && this.lookup(containerId) !== sandboxId) return;
    try {
      unlinkSync(path);
    } catch {}
  }
}
