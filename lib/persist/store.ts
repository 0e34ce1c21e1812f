import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { HuskError, isAlive, validateId } from "../core/index.ts";
import { LOCK_FILE, STORE_KINDS, type Backend, type StoreKind } from "./backend.ts";
import { decodeText, encodeDoc } from "./codec.ts";
import { PersistError } from "./errors.ts";
import { FORMATS, type FormatChain, type SandboxDoc } from "./formats.ts";
import { FsBackend, sweepTempFiles } from "./fs.ts";
import { ContainerIndex } from "./index-dir.ts";
import { acquireLock, type LockOptions, type SandboxLock } from "./lock.ts";
import { SqliteBackend } from "./sqlite.ts";

type AnyDoc = Record<string, unknown> & { id: string; containers: readonly { id: string }[] };
export type ContainerDoc = SandboxDoc["containers"][number];

export interface Found<Doc extends AnyDoc> {
  sandbox: Doc;
  container: Doc["containers"][number];
}

// The persist API every caller uses, whichever store is behind it. Reads need
// no lock (writes are atomic replaces); read-modify-write goes through update().
export class PersistStore<Doc extends AnyDoc = SandboxDoc> {
  private readonly index: ContainerIndex;

  constructor(
    private readonly backend: Backend,
    readonly formats: FormatChain<Doc>,
  ) {
    this.index = new ContainerIndex(backend.root);
  }

  get kind(): StoreKind {
    return this.backend.kind;
  }

  get root(): string {
    return this.backend.root;
  }

  // <root>/<id>: the sandbox's own directory (lock, sockets, logs), for either store.
  sandboxDir(id: string): string {
    return join(this.root, validateId(id, "sandbox"));
  }

  tryLoad(id: string): Doc | undefined {
    validateId(id, "sandbox");
    const got = this.backend.read(id);
    return got && decodeText(got.text, got.origin, this.formats);
  }

  load(id: string): Doc {
    const doc = this.tryLoad(id);
    if (!doc) throw notFound(id, this.root);
    return doc;
  }

  // The document exactly as stored, for `husk inspect --raw`.
  loadRaw(id: string): string {
    validateId(id, "sandbox");
    const got = this.backend.read(id);
    if (!got) throw notFound(id, this.root);
    return got.text;
  }

  // Writes the current format. Call it holding the sandbox lock (update() and
  // create() do), or two writers may lose each other's changes.
  save(doc: Doc): void {
    validateId(doc.id, "sandbox");
    for (const c of doc.containers) validateId(c.id, "container");
    const text = encodeDoc(doc, this.formats);
    // A document this release could not load again is never written.
    this.formats.check(JSON.parse(text), { sandboxId: doc.id, where: "the document to save" });
    this.backend.write(doc.id, text, this.formats.current);
  }

  list(): string[] {
    return this.backend.list().filter((id) => {
      try {
        return validateId(id, "sandbox") === id;
      } catch {
        return false;
      }
    });
  }

  // Removes the document (and lock file) and the index entries of its
  // containers (given, when the caller already removed the document's
  // directory). Call it holding the lock.
  delete(id: string, containerIds?: readonly string[]): void {
    validateId(id, "sandbox");
    let ids = containerIds;
    try {
      ids ??= this.tryLoad(id)?.containers.map((c) => c.id);
    } catch {} // unreadable: its index entries are dropped as stale when met
    this.backend.remove(id);
    // Without a document (a create that died in its first save), whatever names it.
    if (ids) for (const c of ids) this.index.remove(c, id);
    else this.index.removeAllFor(id);
    this.index.removeIfEmpty();
  }

  async lock(id: string, opts?: LockOptions): Promise<SandboxLock> {
    const dir = this.sandboxDir(id);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const lock = await acquireLock(join(dir, LOCK_FILE), id, opts);
    if (this.kind === "fs") sweepTempFiles(dir, (pid) => pid !== process.pid && !isAlive(pid));
    return lock;
  }

  // lock + load + fn + save + unlock. fn may change the document in place or
  // return a new one; what it returns (or the changed document) is saved.
  async update(id: string, fn: (doc: Doc) => Doc | void | Promise<Doc | void>, opts?: LockOptions): Promise<Doc> {
    const lock = await this.lock(id, opts);
    try {
      const doc = this.tryLoad(id);
      if (!doc) {
        this.backend.remove(id); // only the lock file we just made, and its directory if empty
        throw notFound(id, this.root);
      }
      const before = doc.containers.map((c) => c.id);
      const next = (await fn(doc)) ?? doc;
      if (next.id !== id) throw new PersistError("invalid", `update of sandbox ${id} returned sandbox ${next.id}`, id);
      this.save(next);
      this.reindex(id, before, next.containers.map((c) => c.id));
      return next;
    } finally {
      lock.release();
    }
  }

  // Saves a new sandbox; fails if one with that id already has a document.
  async create(doc: Doc, opts?: LockOptions): Promise<void> {
    const lock = await this.lock(doc.id, opts);
    try {
      if (this.backend.read(doc.id))
        throw new PersistError("exists", `sandbox ${doc.id} already exists in ${this.root}`, doc.id);
      const taken = doc.containers.find((c) => !this.claimContainer(c.id, doc.id));
      if (taken) {
        this.backend.remove(doc.id); // only the lock file we just made, and its directory if empty
        throw new PersistError("exists", `container with id ${taken.id} already exists`, doc.id);
      }
      try {
        this.save(doc);
      } catch (e) {
        // A full disk, say: leave nothing behind, not even the claims.
        for (const c of doc.containers) this.index.remove(c.id, doc.id);
        this.index.removeIfEmpty();
        this.backend.remove(doc.id);
        throw e;
      }
      this.reindex(doc.id, [], doc.containers.map((c) => c.id));
    } finally {
      lock.release();
    }
  }

  private reindex(sandboxId: string, before: string[], after: string[]): void {
    for (const c of after) if (!before.includes(c)) this.index.add(c, sandboxId);
    for (const c of before) if (!after.includes(c)) this.index.remove(c, sandboxId);
  }

  // The sandbox that holds a container: the index's answer once the
  // document confirms it, else a sandbox named like the container (its first
  // container), else every document (containers an index-less release added;
  // found ones are indexed). A document this release cannot read is skipped,
  // unless its text names the container: then its error is the answer (one
  // unreadable sandbox must not block work on all the others, nor hide a
  // container that is in it).
  findContainer(containerId: string): Found<Doc> | undefined {
    validateId(containerId, "container");
    const hit = this.findFast(containerId);
    if (hit !== undefined) return hit;
    for (const id of this.list()) {
      if (id === containerId) continue;
      const found = this.inSandbox(id, containerId);
      if (found) return this.index.add(containerId, id), found;
    }
    return undefined;
  }

  // Takes a container id for a sandbox in the index; false when another
  // sandbox already holds a container of that id (checked in O(1)).
  claimContainer(containerId: string, sandboxId: string): boolean {
    validateId(containerId, "container");
    this.ensureIndex();
    if (containerId !== sandboxId && this.inSandbox(containerId, containerId)) return false;
    if (this.index.add(containerId, sandboxId)) return true;
    const holder = this.index.lookup(containerId);
    if (holder === sandboxId) return true;
    if (holder !== undefined && this.inSandbox(holder, containerId)) return false;
    if (holder !== undefined) this.index.remove(containerId, holder);
    return this.index.add(containerId, sandboxId);
  }

  // Whether a container id is taken, without reading every document.
  hasContainer(containerId: string): boolean {
    validateId(containerId, "container");
    return this.findFast(containerId) !== undefined;
  }

  // O(1): the index (verified) and the same-name sandbox.
  private findFast(containerId: string): Found<Doc> | undefined {
    this.ensureIndex();
    const indexed = this.index.lookup(containerId);
    if (indexed !== undefined) {
      const found = this.inSandbox(indexed, containerId);
      if (found) return found;
      this.index.remove(containerId, indexed);
    }
    return this.inSandbox(containerId, containerId);
  }

  private inSandbox(sandboxId: string, containerId: string): Found<Doc> | undefined {
    let doc: Doc | undefined;
    try {
      doc = this.tryLoad(validateId(sandboxId, "sandbox"));
    } catch (e) {
      if (this.mentions(sandboxId, containerId)) throw e;
      return undefined;
    }
    const container = doc?.containers.find((c) => c.id === containerId);
    return doc && container ? { sandbox: doc, container } : undefined;
  }

  // A root an index-less release made is indexed once, from every document.
  // A root without sandboxes needs none (the first claim makes it): a lookup
  // there must not leave a directory behind.
  private ensureIndex(): void {
    if (this.index.exists() || !existsSync(this.root)) return;
    const ids = this.list();
    if (!ids.length) return;
    const pairs: [string, string][] = [];
    for (const id of ids) {
      try {
        for (const c of this.tryLoad(id)?.containers ?? []) pairs.push([c.id, id]);
      } catch {}
    }
    this.index.build(pairs);
  }

  private mentions(sandboxId: string, containerId: string): boolean {
    try {
      return sandboxId === containerId || !!this.backend.read(sandboxId)?.text.includes(JSON.stringify(containerId));
    } catch {
      return false;
    }
  }

  close(): void {
    this.backend.close();
  }
}

const notFound = (id: string, root: string) =>
  new PersistError("not-found", `sandbox ${id} does not exist (no persist document under ${root})`, id);

export interface OpenOptions<Doc extends AnyDoc> {
  root: string;
  // Either name works, so a Settings object can be passed as it is.
  kind?: StoreKind;
  persist?: StoreKind;
  formats?: FormatChain<Doc>;
}

export function openStore<Doc extends AnyDoc = SandboxDoc>(opts: OpenOptions<Doc>): PersistStore<Doc> {
  const kind = opts.kind ?? opts.persist ?? "fs";
  if (!STORE_KINDS.includes(kind))
    throw new HuskError(`unknown persist store ${JSON.stringify(kind)}: use ${STORE_KINDS.join(" or ")}`);
  const backend = kind === "sqlite" ? new SqliteBackend(opts.root) : new FsBackend(opts.root);
  return new PersistStore(backend, (opts.formats ?? FORMATS) as unknown as FormatChain<Doc>);
}
