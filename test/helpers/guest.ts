import { expect } from "vitest";
import type { Cli } from "./cli.ts";

// Nothing of a removed container stays with the sandbox's agent: not its
// record, runc's, its directory, nor a mount (`husk inspect --guest`).
export function expectAgentHoldsOnly(cli: Cli, sandbox: string, ids: string[], vm: boolean): void {
  const g = JSON.parse(cli.ok(["inspect", "--guest", sandbox])) as Record<string, string[]>;
  const sorted = [...ids].sort();
  expect(g.containers!.sort(), "the agent's containers").toEqual(sorted);
  expect(g.ociContainers!.sort(), "runc's containers").toEqual(sorted);
  expect(g.containerDirs, "container directories").toHaveLength(ids.length);
  const perContainer = vm ? 2 : 0; // a VM container's overlay rootfs and its tmpfs
  expect(g.mounts, "mounts under the agent's state").toHaveLength(ids.length * perContainer);
}
