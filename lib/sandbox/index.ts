// The Sandbox API: everything husk does to sandboxes and containers, one file
// per operation. The OCI CLI (cmd/oci) is a thin layer over it; other tools can
// embed it the same way.
export { openContext, type Context } from "./context.ts";
export { createSandbox, type SandboxOptions } from "./create-sandbox.ts";
export { destroySandbox } from "./destroy-sandbox.ts";
export { createContainer, type CreateOptions } from "./create.ts";
export { startContainer } from "./start.ts";
export { containerState, listContainers } from "./state.ts";
export { killContainer } from "./kill.ts";
export { deleteContainer } from "./delete.ts";
export { execInContainer, type ExecOptions } from "./exec.ts";
export { listProcesses, type ProcessEntry } from "./ps.ts";
export { pauseContainer, resumeContainer } from "./pause.ts";
export { updateContainer } from "./update.ts";
export { runContainer } from "./run.ts";
export { runShim } from "./shim.ts";
export { connect, withAgent } from "./agent.ts";
export { Sandbox, SandboxContainer, SandboxProcess, type Output } from "./sandbox.ts";
export { checkpointContainer, type CheckpointOptions } from "./checkpoint.ts";
export { restoreContainer } from "./restore.ts";
export { collectGarbage, garbageReason, type GcEntry } from "./gc.ts";
