import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, rmdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { errorMessage } from "../core/index.ts";
import type { Backend } from "./backend.ts";
import { LOCK_FILE } from "./backend.ts";
import { MAX_DOC_BYTES } from "./codec.ts";
import { PersistError, type Origin } from "./errors.ts";

export const DB_FILE = "persist.db";
// Layout of the database itself (tables), separate from the document format.
const DB_LAYOUT = 1;

// All documents in one database at <root>/persist.db, one row per sandbox; each
// save is one transaction. WAL with synchronous=FULL: a commit is on disk when
// it returns, and readers never wait for writers.
export class SqliteBackend implements Backend {
  readonly kind = "sqlite" as const;
  readonly path: string;
  private db: Database | undefined;

  constructor(readonly root: string) {
    this.path = join(root, DB_FILE);
  }

  // Opened on first use; reading from a root that has no database creates nothing.
  private open(create: boolean): Database | undefined {
    if (this.db) return this.db;
    if (!create && !existsSync(this.path)) return undefined;
    try {
      mkdirSync(this.root, { recursive: true, mode: 0o711 });
      const db = new Database(this.path, { create: true, strict: true });
      db.exec("PRAGMA busy_timeout = 30000");
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = FULL");
      const layout = (db.query("PRAGMA user_version").get() as { user_version: number }).user_version;
      if (layout > DB_LAYOUT)
        throw new Error(`its table layout ${layout} is newer than this husk knows (${DB_LAYOUT}); upgrade husk`);
      if (layout < DB_LAYOUT)
        db.transaction(() => {
          db.exec(
            "CREATE TABLE IF NOT EXISTS sandboxes (id TEXT PRIMARY KEY, format_version TEXT NOT NULL, doc TEXT NOT NULL)",
          );
          db.exec(`PRAGMA user_version = ${DB_LAYOUT}`);
        }).immediate();
      this.db = db;
      return db;
    } catch (e) {
      throw new PersistError("io", `cannot open ${this.path}: ${errorMessage(e)}`);
    }
  }

  private origin(id: string): Origin {
    return { sandboxId: id, where: `${this.path} row ${JSON.stringify(id)}`, path: this.path };
  }

  read(id: string) {
    const db = this.open(false);
    if (!db) return undefined;
    const origin = this.origin(id);
    const size = db.query("SELECT length(CAST(doc AS BLOB)) AS n FROM sandboxes WHERE id = ?").get(id) as { n: number } | null;
    if (!size) return undefined;
    if (size.n > MAX_DOC_BYTES)
      throw new PersistError(
        "too-large",
        `${origin.where} (sandbox ${id}) is ${size.n} bytes, over the ${MAX_DOC_BYTES}-byte limit for a persist document; it was not read and was left as it is`,
        id,
        this.path,
      );
    const row = db.query("SELECT doc FROM sandboxes WHERE id = ?").get(id) as { doc: string } | null;
    return row ? { text: String(row.doc), origin } : undefined;
  }

  write(id: string, text: string, formatVersion: string): void {
    const db = this.open(true)!;
    mkdirSync(join(this.root, id), { recursive: true, mode: 0o700 }); // sockets and the lock live here
    try {
      db.transaction(() => {
        db.query(
          "INSERT INTO sandboxes (id, format_version, doc) VALUES (?, ?, ?) " +
            "ON CONFLICT(id) DO UPDATE SET format_version = excluded.format_version, doc = excluded.doc",
        ).run(id, formatVersion, text);
      }).immediate();
    } catch (e) {
      throw new PersistError("io", `cannot write ${this.origin(id).where} (sandbox ${id}): ${errorMessage(e)}`, id);
    }
  }

  list(): string[] {
    const db = this.open(false);
    if (!db) return [];
    return (db.query("SELECT id FROM sandboxes ORDER BY id").all() as { id: string }[]).map((r) => r.id);
  }

  remove(id: string): void {
    this.open(false)?.query("DELETE FROM sandboxes WHERE id = ?").run(id);
    const dir = join(this.root, id);
    try {
      unlinkSync(join(dir, LOCK_FILE));
      rmdirSync(dir);
    } catch {}
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }
}
