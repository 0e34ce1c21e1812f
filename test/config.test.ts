import { describe, expect, test } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CHILD_SETTINGS_ENV, childEnv, loadSettings } from "../lib/config/index.ts";
import { resolveDriverName } from "../lib/hypervisor/index.ts";

const configFile = (toml: string) => {
  const path = join(mkdtempSync(join(tmpdir(), "husk-config-")), "config.toml");
  writeFileSync(path, toml);
  return path;
};

describe("settings: defaults < config file < environment < flags", () => {
  test("each layer overrides the one below it", () => {
    const path = configFile('root = "/from/file"\nhypervisor = "qemu"\npersist = "sqlite"\n[agent]\nruntime = "crun"\n');
    const env = { HUSK_HYPERVISOR: "local", HUSK_OCI_RUNTIME: "/opt/runc" };
    expect(loadSettings({}, { HUSK_CONFIG: "/dev/null" })).toMatchObject({ root: "/run/husk", hypervisor: "auto", persist: "fs", ociRuntime: "runc" });
    expect(loadSettings({ configPath: path }, {})).toMatchObject({ root: "/from/file", hypervisor: "qemu", persist: "sqlite", ociRuntime: "crun" });
    expect(loadSettings({ configPath: path }, env)).toMatchObject({ root: "/from/file", hypervisor: "local", ociRuntime: "/opt/runc" });
    expect(loadSettings({ configPath: path, root: "/from/flag", hypervisor: "clh" }, env)).toMatchObject({ root: "/from/flag", hypervisor: "clh", persist: "sqlite" });
  });

  test("a helper process (shim, proxy) runs with its parent's settings whole, whatever the file says by then", () => {
    const path = configFile('root = "/from/file"\nhypervisor = "qemu"\n[guest]\ndir = "/g"\n');
    const parent = loadSettings({ configPath: path, persist: "sqlite", debug: true }, { HUSK_QEMU: "/opt/qemu" });
    writeFileSync(path, 'root = "/changed"\nhypervisor = "clh"\n');
    const env = childEnv(parent);
    const child = loadSettings({}, { ...env, HUSK_HYPERVISOR: "local" });
    expect(child).toEqual(parent);
    expect(child).toMatchObject({ root: "/from/file", hypervisor: "qemu", persist: "sqlite", qemuPath: "/opt/qemu", guestDir: "/g", debug: true });
    expect(() => loadSettings({}, { [CHILD_SETTINGS_ENV]: "{" })).toThrow(/HUSK_SETTINGS is not valid JSON/);
    expect(() => loadSettings({}, { [CHILD_SETTINGS_ENV]: '{"root": 1}' })).toThrow(/HUSK_SETTINGS: /);
  });

  test("HUSK_CONFIG names the file; a missing default file is fine, a missing named one is not", () => {
    const path = configFile('root = "/via/env"\n');
    expect(loadSettings({}, { HUSK_CONFIG: path }).root).toBe("/via/env");
    expect(() => loadSettings({ configPath: "/nonexistent/husk.toml" }, {})).toThrow(/cannot read config file \/nonexistent\/husk\.toml/);
  });

  test("bad values name the file and the key; unknown keys are ignored (a newer release's file still loads)", () => {
    expect(() => loadSettings({ configPath: configFile('persist = "mongodb"\n') }, {})).toThrow(/config\.toml: persist: /);
    expect(() => loadSettings({ configPath: configFile("root = [\n") }, {})).toThrow(/is not valid TOML/);
    expect(loadSettings({ configPath: configFile('root = "/r"\nfuture_setting = 1\n[future]\nx = 2\n') }, {}).root).toBe("/r");
  });
});

describe("--hypervisor auto", () => {
  test("says how to choose when no VMM is found", () => {
    const settings = loadSettings({ configPath: "/dev/null", clhPath: "/nonexistent/cloud-hypervisor", qemuPath: "/nonexistent/qemu" }, {});
    expect(() => resolveDriverName(settings)).toThrow(/no hypervisor found: .*cloud-hypervisor.*QEMU.*'local' runs containers without a VM/);
  });

  test("an explicit choice is taken as it is", () => {
    expect(resolveDriverName(loadSettings({ configPath: "/dev/null", hypervisor: "local" }, {}))).toBe("local");
  });
});
