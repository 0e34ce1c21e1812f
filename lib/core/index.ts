export { ErrorCode, HuskError, errnoOf, errorCode, errorMessage, errorReason, fromSystemError, type HuskErrorOptions } from "./errors.ts";
export { validateId } from "./id.ts";
export { configureLog, debugEnabled, log, type LogFormat } from "./log.ts";
export { VERSION, COMMIT, OCI_SPEC_VERSION } from "./build-info.ts";
export { RESIDENT_JSC_ENV, residentEnv, selfCommand } from "./self.ts";
export { describeIssues, preview } from "./issues.ts";
export { isAlive, processStartTime, terminate } from "./proc.ts";
export {
  closeFd,
  getWindowSize,
  handOverTerminal,
  makeRaw,
  restoreTermios,
  setControllingTty,
  setWindowSize,
  watchWindowSize,
} from "./pty.ts";
export { keepCacheFile, writeFully } from "./fd.ts";
export { crashPoint } from "./crash.ts";
export { parseSize } from "./units.ts";
export { readBounded } from "./read-bounded.ts";
