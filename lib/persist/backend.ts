import type { Origin } from "./errors.ts";

export const STORE_KINDS = ["fs", "sqlite"] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

// What differs between stores: moving document text in and out. Parsing,
// versions, locking and ids are the same for every store (store.ts).
export interface Backend {
  readonly kind: StoreKind;
  readonly root: string;
  // undefined when the sandbox has no document; PersistError when it cannot be read safely.
  read(id: string): { text: string; origin: Origin } | undefined;
  // Atomic and durable: after it returns, a crash leaves the new text; during it, the old.
  write(id: string, text: string, formatVersion: string): void;
  list(): string[];
  remove(id: string): void;
  close(): void;
}

export const LOCK_FILE = "persist.lock";
