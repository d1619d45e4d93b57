// Records each Jest run's counts in .stack/test-results/<package>.json so scripts/test.js can print one total.
// The counts are Jest's own: tests passed / failed / skipped, and the suites that failed without a failing test
// (a suite that did not compile, threw at load time or failed in a hook outside any test). A suite that failed
// because some of its tests failed is not counted again: those tests already are.
const fs = require('node:fs');
const path = require('node:path');

class SummaryReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
  }

  onRunComplete(_contexts, results) {
    const dir = path.join(__dirname, '..', '.stack', 'test-results');
    fs.mkdirSync(dir, { recursive: true });
    const base = path.relative(path.join(__dirname, '..'), this.rootDir).replace(/[\\/]/g, '_') || 'root';
    // The cluster phase (KIEL_CLUSTER_TESTS=only) of the same package keeps its own file.
    const name = process.env.KIEL_CLUSTER_TESTS === 'only' ? `${base}.cluster` : base;
    fs.writeFileSync(
      path.join(dir, `${name}.json`),
      JSON.stringify({
        passed: results.numPassedTests,
        failed: results.numFailedTests,
        skipped: results.numPendingTests + results.numTodoTests,
        // numFailedTestSuites counts every suite with a failure, including those whose failures are failed tests
        // (already in numFailedTests); adding it double-counted them. Count only the suites whose error is their own.
        suitesFailed: results.testResults.filter(
          (r) => r.numFailingTests === 0 && (r.testExecError || r.failureMessage),
        ).length,
      }),
    );
  }
}

module.exports = SummaryReporter;
