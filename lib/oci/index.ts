export { SpecSchema, ProcessSchema, MountSchema, type Spec, type ProcessSpec, type MountSpec } from "./spec.ts";
export { loadBundle, parseSpec, type Bundle } from "./bundle.ts";
export { stateJson, type StateJson, type ContainerStatus } from "./state.ts";
export { defaultSpec } from "./default-spec.ts";
export { parseSignal, signalName } from "./signal.ts";
