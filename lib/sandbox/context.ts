import type { Settings } from "../config/index.ts";
import { openStore, type PersistStore } from "../persist/index.ts";

// What every Sandbox API call needs: the settings and the persist store.
export interface Context {
  settings: Settings;
  store: PersistStore;
}

export async function openContext(settings: Settings): Promise<Context> {
  return { settings, store: openStore({ root: settings.root, kind: settings.persist }) };
}
