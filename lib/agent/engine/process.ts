import type { Reaper } from "./reaper.ts";
import type { ProcessIo } from "./stdio.ts";
import type { ExitStatus } from "./types.ts";

// One process the engine started: a container's init (execId "") or an exec.
// Its exit status is kept once collected, its output until read or deleted.
export class Proc {
  readonly exited: Promise<ExitStatus>;
  exit: ExitStatus | undefined;

  constructor(
    readonly execId: string,
    readonly pid: number,
    readonly io: ProcessIo,
    readonly terminal: boolean,
    reaper: Reaper,
  ) {
    this.exited = reaper.watch(pid).then((s) => (this.exit = s));
    // Once it is gone and its output is all read in, nothing needs the descriptors.
    void Promise.all([this.exited, io.drained]).then(() => io.release());
  }

  get running(): boolean {
    return this.exit === undefined;
  }
}
