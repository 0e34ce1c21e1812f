import type { CommandDef } from "citty";

type Loader = () => Promise<CommandDef<any>>;
const lazy = (load: () => Promise<{ default: CommandDef<any> }>): Loader => () => load().then((m) => m.default);

// The runtime-spec operations every OCI runtime has.
export const standardCommands: Record<string, Loader> = {
  create: lazy(() => import("./create.ts")),
  start: lazy(() => import("./start.ts")),
  state: lazy(() => import("./state.ts")),
  kill: lazy(() => import("./kill.ts")),
  delete: lazy(() => import("./delete.ts")),
};

// The commands runc adds, which podman and containerd also call.
export const commonCommands: Record<string, Loader> = {
  run: lazy(() => import("./run.ts")),
  exec: lazy(() => import("./exec.ts")),
  ps: lazy(() => import("./ps.ts")),
  pause: lazy(() => import("./pause.ts")),
  resume: lazy(() => import("./resume.ts")),
  list: lazy(() => import("./list.ts")),
  spec: lazy(() => import("./spec.ts")),
  features: lazy(() => import("./features.ts")),
  update: lazy(() => import("./update.ts")),
  checkpoint: lazy(() => import("./checkpoint.ts")),
  restore: lazy(() => import("./restore.ts")),
};
