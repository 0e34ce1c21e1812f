import { Database } from "bun:sqlite";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUN } from "../helpers/husk.ts";
import { newSandboxDoc, type ContainerDoc, type SandboxDoc, type StoreKind } from "../../lib/persist/index.ts";

export const KINDS: StoreKind[] = ["fs", "sqlite"];
export const CHILDREN = join(import.meta.dirname, "children");
export { BUN };

export const tempRoot = (tag = "persist") => mkdtempSync(join(tmpdir(), `husk-${tag}-`));

export function container(id: string, extra: Partial<ContainerDoc> = {}): ContainerDoc {
  return { id, bundle: `/bundles/${id}`, rootfs: `/bundles/${id}/rootfs`, state: "created", createdAt: new Date().toISOString(), ...extra };
}

// Version n of a document whose size changes with n, so a torn write would show.
export function versionedDoc(id: string, n: number): SandboxDoc {
  const doc = newSandboxDoc({ id, state: "running", createdAt: "2025-01-01T00:00:00.000Z" });
  doc.annotations = { seq: String(n) };
  doc.containers = Array.from({ length: (n % 7) + 1 }, (_, i) =>
    container(`${id}-c${i}`, {
      createdAt: "2025-01-01T00:00:00.000Z",
      process: { args: ["sh", "-c", `echo ${"x".repeat((n * 37) % 500)}`], cwd: "/" },
    }),
  );
  return doc;
}

// Everything save stamps (the writing release) left out, for comparisons.
export function content(doc: SandboxDoc): Omit<SandboxDoc, "writtenBy" | "createdBy"> {
  const { writtenBy: _w, createdBy: _c, ...rest } = doc;
  return rest;
}

export function run(args: string[]) {
  return Bun.spawn([BUN, ...args], { stdout: "pipe", stderr: "pipe" });
}

// Puts text where a store keeps a sandbox's document, bypassing every check:
// how a file written by another release (or a disk error) looks to us.
export function writeRaw(root: string, kind: StoreKind, id: string, text: string): void {
  if (kind === "fs") {
    mkdirSync(join(root, id), { recursive: true });
    writeFileSync(join(root, id, "persist.json"), text);
    return;
  }
  const db = new Database(join(root, "persist.db"));
  try {
    db.query("UPDATE sandboxes SET doc = ? WHERE id = ?").run(text, id);
  } finally {
    db.close();
  }
}
