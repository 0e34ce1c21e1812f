export { HuskError, errorMessage } from "./errors.ts";
export { validateId } from "./id.ts";
export { configureLog, debugEnabled, log, type LogFormat } from "./log.ts";
export { VERSION, COMMIT, OCI_SPEC_VERSION } from "./build-info.ts";
export { selfCommand } from "./self.ts";
export { describeIssues } from "./issues.ts";
export { isAlive, processStartTime, terminate } from "./proc.ts";
export { startDaemon, canConnect, type DaemonSpec } from "./daemon.ts";
