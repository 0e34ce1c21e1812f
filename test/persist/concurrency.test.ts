import { describe, expect, test } from "vitest";
import { join } from "node:path";
import { openStore, PersistError } from "../../lib/persist/index.ts";
import { CHILDREN, KINDS, run, tempRoot, versionedDoc } from "./helpers.ts";

const PROCS = 16;
const EACH = 50;

describe.each(KINDS)("locking, %s store", (kind) => {
  test(`${PROCS} processes x ${EACH} read-modify-write increments lose none`, async () => {
    const root = tempRoot(`conc-${kind}`);
    const store = openStore({ root, kind });
    await store.create(versionedDoc("shared", 0));
    const children = Array.from({ length: PROCS }, () =>
      run([join(CHILDREN, "incrementer.ts"), root, kind, "shared", String(EACH)]),
    );
    const codes = await Promise.all(children.map((c) => c.exited));
    const errors = await Promise.all(children.map((c) => new Response(c.stderr).text()));
    expect(errors.filter(Boolean)).toEqual([]);
    expect(codes).toEqual(Array(PROCS).fill(0));
    expect(store.load("shared").annotations?.counter).toBe(String(PROCS * EACH));
    store.close();
  }, 180_000);

  test("a lock held too long times out naming the holder; the holder's death frees it", async () => {
    const root = tempRoot(`lock-${kind}`);
    const store = openStore({ root, kind });
    await store.create(versionedDoc("held", 0));
    const holder = run([join(CHILDREN, "holder.ts"), root, kind, "held"]);
    try {
      await holder.stdout.getReader().read(); // "locked"
      const err = await store.lock("held", { timeoutMs: 300 }).catch((e) => e);
      expect(err).toBeInstanceOf(PersistError);
      expect(err.reason).toBe("lock-timeout");
      expect(err.message).toContain(`sandbox held is locked by pid ${holder.pid}`);
      const failed = await store.update("held", () => {}, { timeoutMs: 100 }).catch((e) => e);
      expect(failed.reason).toBe("lock-timeout");
    } finally {
      holder.kill("SIGKILL");
      await holder.exited;
    }
    const lock = await store.lock("held", { timeoutMs: 2000 });
    lock.release();
    store.close();
  });

  test("one process: a second lock of the same sandbox waits for the first", async () => {
    const store = openStore({ root: tempRoot(`lock1-${kind}`), kind });
    const first = await store.lock("s1");
    let second = false;
    const waiting = store.lock("s1").then((l) => ((second = true), l));
    await Bun.sleep(50);
    expect(second).toBe(false);
    first.release();
    (await waiting).release();
    expect(second).toBe(true);
  });
});
