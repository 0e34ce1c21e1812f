import type { Reporter, TestModule } from "vitest/node";

// Ends every run with the plain line CI reads: "N passed, N failed, N skipped".
// Errors outside any test (a file that fails to load, a failing beforeAll or
// afterAll, an unhandled rejection) count as failures too, so the line never
// says 0 failed when the run did not pass.
export default class SummaryLineReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = unhandledErrors.length;
    let skipped = 0;
    for (const mod of modules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failed++;
        else skipped++;
      }
      failed += mod.errors().length;
      for (const suite of mod.children.allSuites()) failed += suite.errors().length;
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
