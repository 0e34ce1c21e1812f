export { LIMITS, SpecSchema, ProcessSchema, MountSchema, HookSchema, type Spec, type ProcessSpec, type MountSpec, type HookSpec } from "./spec.ts";
export { loadBundle, parseSpec, type Bundle } from "./bundle.ts";
export { checkBundle, isBindMount } from "./check-bundle.ts";
export { stateJson, type StateJson } from "./state.ts";
export {
  CONTAINER_STATUSES,
  ContainerStatusSchema,
  OPERATIONS,
  TRANSITIONS,
  canTransition,
  checkOperation,
  isLive,
  nextStatus,
  operationAllowed,
  type ContainerOperation,
  type ContainerStatus,
  type OperationOptions,
} from "./status.ts";
export { defaultSpec } from "./default-spec.ts";
export { parseSignal, signalName } from "./signal.ts";
