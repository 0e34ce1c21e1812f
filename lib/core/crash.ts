// For tests of crash recovery only: HUSK_TEST_CRASH_AT=<point>[,<point>...]
// makes a husk process kill itself (SIGKILL, as a crash or the OOM killer
// would) when it reaches one of the named points. Points are named
// "<operation>:<step>", e.g. "create:saved-vm"; see test/faults/crash.test.ts.
const points = new Set((process.env.HUSK_TEST_CRASH_AT ?? "").split(",").filter(Boolean));

export function crashPoint(name: string): void {
  if (points.has(name)) process.kill(process.pid, "SIGKILL");
}
