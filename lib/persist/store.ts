import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { HuskError, isAlive, validateId } from "../core/index.ts";
import { LOCK_FILE, STORE_KINDS, type Backend, type StoreKind } from "./backend.ts";
import { decodeText, encodeDoc } from "./codec.ts";
import { PersistError } from "./errors.ts";
import { FORMATS, type FormatChain, type SandboxDoc } from "./formats.ts";
import { FsBackend, sweepTempFiles } from "./fs.ts";
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
  constructor(
    private readonly backend: Backend,
    readonly formats: FormatChain<Doc>,
  ) {}

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

  // Removes the document (and lock file). Call it holding the lock.
  delete(id: string): void {
    validateId(id, "sandbox");
    this.backend.remove(id);
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
      const next = (await fn(doc)) ?? doc;
      if (next.id !== id) throw new PersistError("invalid", `update of sandbox ${id} returned sandbox ${next.id}`, id);
      this.save(next);
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
      this.save(doc);
    } finally {
      lock.release();
    }
  }

  // The sandbox that holds a container. A sandbox named like the container
  // (its first container) is tried first; otherwise every document is read.
  // A document this release cannot read is skipped, unless its text names the
  // container: then its error is the answer (one unreadable sandbox must not
  // block work on all the others, nor hide a container that is in it).
  findContainer(containerId: string): Found<Doc> | undefined {
    validateId(containerId, "container");
    const inSandbox = (id: string) => {
      let doc: Doc | undefined;
      try {
        doc = this.tryLoad(id);
      } catch (e) {
        if (this.mentions(id, containerId)) throw e;
        return undefined;
      }
      const container = doc?.containers.find((c) => c.id === containerId);
      return doc && container ? { sandbox: doc, container } : undefined;
    };
    const fast = inSandbox(containerId);
    if (fast) return fast;
    for (const id of this.list()) {
      if (id === containerId) continue;
      const hit = inSandbox(id);
      if (hit) return hit;
    }
    return undefined;
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
