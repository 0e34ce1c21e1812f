import { errorMessage, log } from "../core/index.ts";
import type { Hypervisor } from "../hypervisor/index.ts";
import { defaultSpec } from "../oci/index.ts";
import type { VmRecord } from "../persist/index.ts";
import { connectAgent, type AgentClient } from "../protocol/index.ts";
import { refreshGuest } from "./agent.ts";
import { pumpOutput, waitExit } from "./stdio.ts";

// Before a template is saved its agent does once what every sandbox made
// from it does first: a session (handshake, clock, setup) and a container's
// whole life (create, output, start, exit, remove). The agent's code for
// them is then loaded and set up in the saved image, not in each restored
// VM: under TCG its first session after a restore took ~0.6 s and its first
// create ~0.7 s. Hanging up makes the guest reopen its port; the wait lets
// it do so before the template's builder dials again.

const WARM_ID = "husk-template-warm-up";
const REOPEN_WAIT_MS = 500;

export async function warmUp(driver: Hypervisor, vm: VmRecord, sandboxId: string): Promise<void> {
  const started = Date.now();
  const agent = await connectAgent(() => driver.dialAgent(vm), { sandboxId, timeoutMs: 60_000 });
  try {
    await refreshGuest(agent, sandboxId);
    if (agent.has("sandbox")) await agent.rpc.setupSandbox({ sandboxId, hostname: "" });
    await oneContainer(agent, sandboxId);
  } finally {
    agent.close();
  }
  log.debug(`VM template ${sandboxId}: agent warmed up in ${Date.now() - started} ms`);
  await Bun.sleep(REOPEN_WAIT_MS);
}

// A container over the guest's own root (busybox is in every initramfs)
// that prints a line and exits. One that cannot be made or run only costs
// the warm-up; one that cannot be removed fails the build: no template
// holds a container.
async function oneContainer(agent: AgentClient, sandboxId: string): Promise<void> {
  const spec = defaultSpec();
  spec.process = { ...spec.process!, terminal: false, args: ["/bin/busybox", "echo", "warm"] };
  const ref = { containerId: WARM_ID };
  const skipped = (e: unknown) => void log.warn(`VM template ${sandboxId}: its warm-up container: ${errorMessage(e)}`);
  try {
    await agent.rpc.createContainer({
      containerId: WARM_ID,
      ociSpecJson: JSON.stringify(spec),
      rootfs: { source: { case: "overlay", value: { lowerDirs: ["/"] } }, readonly: true },
      terminal: false,
      openStdin: false,
    });
  } catch (e) {
    return skipped(e);
  }
  // Output and exit are asked for before the start, as a shim does; one
  // Promise.all holds all three, so none fails unheard.
  const life = [pumpOutput(agent, ref, async () => {}), waitExit(agent, ref), agent.rpc.startContainer(ref)];
  await Promise.all(life).catch(skipped);
  await agent.rpc.removeContainer({ ...ref, force: true });
}
