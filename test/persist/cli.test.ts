import { expect, test } from "vitest";
import { writeFileSync } from "node:fs";
import { husk } from "../helpers/husk.ts";
import { openStore } from "../../lib/persist/index.ts";
import { tempRoot, versionedDoc } from "./helpers.ts";

test("husk version --json says which persist formats it writes and reads", () => {
  const r = husk(["version", "--json"]);
  expect(r.status).toBe(0);
  expect(JSON.parse(r.stdout).persist).toEqual({ writes: "1.2", reads: [">=1.0 <2.0"] });
});

test("husk inspect reads the store the settings name: flag, environment or config file", () => {
  const root = tempRoot("cli");
  openStore({ root, kind: "sqlite" }).save(versionedDoc("in-db", 5));
  const fs = husk(["--root", root, "inspect", "in-db"]);
  expect(fs.status).not.toBe(0);
  expect(fs.stderr).toContain("sandbox in-db does not exist");
  const viaFlag = husk(["--root", root, "--persist", "sqlite", "inspect", "in-db"]);
  expect(viaFlag.status).toBe(0);
  expect(JSON.parse(viaFlag.stdout).annotations.seq).toBe("5");
  const viaEnv = husk(["--root", root, "inspect", "--raw", "in-db"], { env: { HUSK_PERSIST: "sqlite" } });
  expect(viaEnv.status).toBe(0);
  expect(viaEnv.stdout).toBe(openStore({ root, kind: "sqlite" }).loadRaw("in-db"));
  const conf = `${root}/config.toml`;
  writeFileSync(conf, `persist = "sqlite"\nroot = "${root}"\n`);
  const viaFile = husk(["inspect", "in-db"], { env: { HUSK_CONFIG: conf } });
  expect(viaFile.status).toBe(0);
  expect(JSON.parse(viaFile.stdout).id).toBe("in-db");
});

test("husk inspect refuses an id that is not one", () => {
  const r = husk(["--root", tempRoot("cli-id"), "inspect", "../../etc"]);
  expect(r.status).not.toBe(0);
  expect(r.stderr).toContain("invalid sandbox id");
});
