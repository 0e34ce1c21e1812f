import { describe, expect, test } from "vitest";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { HuskError, VERSION } from "../../lib/core/index.ts";
import { newSandboxDoc, openStore, PersistError } from "../../lib/persist/index.ts";
import { FORMATS } from "../../lib/persist/index.ts";
import { container, KINDS, tempRoot, versionedDoc, writeRaw } from "./helpers.ts";

describe.each(KINDS)("%s store", (kind) => {
  const fresh = () => openStore({ root: tempRoot(`store-${kind}`), kind });

  test("saves, loads, lists and deletes sandboxes", async () => {
    const store = fresh();
    expect(store.list()).toEqual([]);
    await store.create(versionedDoc("b", 1));
    await store.create(versionedDoc("a", 2));
    expect(store.list()).toEqual(["a", "b"]);
    const a = store.load("a");
    expect(a.annotations?.seq).toBe("2");
    expect(a.formatVersion).toBe(FORMATS.current);
    expect(a.writtenBy.version).toBe(VERSION);
    expect(statSync(store.sandboxDir("a")).isDirectory()).toBe(true);
    store.delete("a");
    expect(store.list()).toEqual(["b"]);
    expect(store.tryLoad("a")).toBeUndefined();
    expect(() => store.load("a")).toThrow(/sandbox a does not exist/);
    store.close();
  });

  test("create refuses an existing sandbox", async () => {
    const store = fresh();
    await store.create(versionedDoc("x", 1));
    const err = await store.create(versionedDoc("x", 2)).catch((e) => e);
    expect(err.reason).toBe("exists");
    expect(store.load("x").annotations?.seq).toBe("1");
  });

  test("update changes the document under the lock and keeps the creator's stamp", async () => {
    const store = fresh();
    const doc = newSandboxDoc({ id: "u" });
    doc.createdBy = { version: "0.0.1", commit: "old" };
    store.save(doc);
    const out = await store.update("u", (d) => {
      d.state = "running";
      d.containers.push(container("c1"));
    });
    expect(out.state).toBe("running");
    const back = store.load("u");
    expect(back.containers.map((c) => c.id)).toEqual(["c1"]);
    expect(back.createdBy).toEqual({ version: "0.0.1", commit: "old" });
    expect(back.writtenBy.version).toBe(VERSION);
    const replaced = await store.update("u", (d) => ({ ...d, state: "stopped" as const }));
    expect(store.load("u").state).toBe(replaced.state);
    await expect(store.update("missing", () => {})).rejects.toThrow(/sandbox missing does not exist/);
    expect(existsSync(join(store.root, "missing"))).toBe(false); // no lock file left behind
  });

  test("update writes nothing when fn throws", async () => {
    const store = fresh();
    await store.create(versionedDoc("t", 1));
    await expect(
      store.update("t", (d) => {
        d.state = "stopped";
        throw new Error("agent unreachable");
      }),
    ).rejects.toThrow("agent unreachable");
    expect(store.load("t").state).toBe("running");
  });

  test("finds the sandbox holding a container", async () => {
    const store = fresh();
    const pod = newSandboxDoc({ id: "pod", containers: [container("pod"), container("web")] });
    const solo = newSandboxDoc({ id: "solo", containers: [container("solo")] });
    await store.create(pod);
    await store.create(solo);
    expect(store.findContainer("web")?.sandbox.id).toBe("pod");
    expect(store.findContainer("solo")?.container.id).toBe("solo");
    expect(store.findContainer("pod")?.sandbox.id).toBe("pod");
    expect(store.findContainer("nope")).toBeUndefined();
    expect(() => store.findContainer("../etc")).toThrow(HuskError);
  });

  test("ids that could escape the root are refused before any path is built", async () => {
    const store = fresh();
    for (const id of ["../x", "a/b", "..", "a\0b", "x".repeat(1025)]) {
      expect(() => store.load(id)).toThrow(/invalid sandbox id/);
      await expect(store.lock(id)).rejects.toThrow(/invalid sandbox id/);
      expect(() => store.save(newSandboxDoc({ id }))).toThrow(/invalid sandbox id/);
    }
    expect(() => store.save(newSandboxDoc({ id: "ok", containers: [container("../../x")] }))).toThrow(
      /invalid container id/,
    );
    expect(store.list()).toEqual([]);
    expect(readdirSync(store.root).filter((f) => !f.startsWith("persist.db"))).toEqual([]);
  });

  test("a document that does not match the format is never written", () => {
    const store = fresh();
    const doc = newSandboxDoc({ id: "bad" });
    (doc as { state: string }).state = "exploded";
    expect(() => store.save(doc)).toThrow(/state/);
    expect(store.tryLoad("bad")).toBeUndefined();
  });

  test("reading a root that does not exist creates nothing", () => {
    const root = join(tempRoot(`noroot-${kind}`), "absent");
    const store = openStore({ root, kind });
    expect(store.list()).toEqual([]);
    expect(store.tryLoad("x")).toBeUndefined();
    expect(store.findContainer("x")).toBeUndefined();
    expect(existsSync(root)).toBe(false);
  });

  test("openStore takes settings as they are", () => {
    const root = tempRoot("settings");
    expect(openStore({ root, persist: kind }).kind).toBe(kind);
    expect(() => openStore({ root, kind: "etcd" as never })).toThrow(/unknown persist store "etcd"/);
  });
});

test("errors are HuskErrors with a reason", () => {
  const e = new PersistError("corrupt", "m", "id");
  expect(e).toBeInstanceOf(HuskError);
  expect(e.reason).toBe("corrupt");
});

describe.each(KINDS)("findContainer beside an unreadable sandbox, %s store", (kind) => {
  test("skips it unless it names the container, then says why it cannot answer", async () => {
    const store = openStore({ root: tempRoot(`find-${kind}`), kind });
    await store.create(newSandboxDoc({ id: "good", containers: [container("good"), container("app")] }));
    await store.create(newSandboxDoc({ id: "bad", containers: [container("bad"), container("lost")] }));
    // "bad" written by a future major release: this one cannot read it.
    const future = JSON.parse(store.loadRaw("bad"));
    future.formatVersion = "2.0";
    writeRaw(store.root, kind, "bad", JSON.stringify(future));
    expect(store.findContainer("app")?.sandbox.id).toBe("good");
    expect(store.findContainer("nowhere")).toBeUndefined();
    expect(() => store.findContainer("lost")).toThrow(/format 2\.0, which is newer/);
    expect(() => store.findContainer("bad")).toThrow(/format 2\.0, which is newer/);
  });
});
