// Records each Jest run's counts in .stack/test-results/<package>.json so scripts/test.js can print one total.
// The counts are Jest's own: tests passed / failed / skipped, and the suites that failed without a failing test
// (a suite that did not compile, threw at load time or failed in a hook outside any test). A suite that failed
// because some of its tests failed is not counted again: those tests already are. It also keeps each failure's
// test name and the head of its message, which scripts/test.js prints again at the very end of the run: CI shows
// only a run's tail, and Jest's own report of a failure may be thousands of lines above it.
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
    const file = path.join(dir, `${name}.json`);
    const summary = {
      passed: results.numPassedTests,
      failed: results.numFailedTests,
      skipped: results.numPendingTests + results.numTodoTests,
      // numFailedTestSuites counts every suite with a failure, including those whose failures are failed tests
      // (already in numFailedTests); adding it double-counted them. Count only the suites whose error is their own.
      suitesFailed: results.testResults.filter((r) => r.numFailingTests === 0 && (r.testExecError || r.failureMessage))
        .length,
      failures: failures(results, this.rootDir),
    };
    fs.writeFileSync(file, JSON.stringify(summary));
    watchExit(name, file, summary);
  }
}

/** How long Jest may take to exit after its last test before the run fails, ms (KIEL_JEST_EXIT_GRACE_MS). */
const EXIT_GRACE_MS = Number(process.env.KIEL_JEST_EXIT_GRACE_MS ?? 60_000);

/**
 * There is no forceExit (see jest.preset.js): a handle a test left open would keep Jest, and CI with it, waiting for
 * good. Once the tests are done, this gives the process a minute to end by itself; if it is still there, it names the
 * handles still open, records the failure where scripts/test.js reads it, and exits with an error. The timer is
 * unref'd, so it never keeps the process alive itself.
 */
function watchExit(name, file, summary) {
  const timer = setTimeout(() => {
    // What keeps the event loop alive, by kind (Timeout, TCPWrap, ...); this watchdog's own timer is unref'd.
    const open = process.getActiveResourcesInfo();
    const message =
      `Jest did not exit ${EXIT_GRACE_MS / 1000} s after the last test of ${name}: a test left a handle open ` +
      `(${open.join(', ') || 'none listed: an active request'}). Close it where it is opened.`;
    process.stderr.write(`\n${message}\n`);
    summary.suitesFailed += 1;
    summary.failures.push({ file: name, name: '(the run did not exit)', message });
    fs.writeFileSync(file, JSON.stringify(summary));
    process.exit(1);
  }, EXIT_GRACE_MS);
  timer.unref();
}

const MESSAGE_LINES = 25;

/** Each failed test (and each suite that failed outside a test): file, name, and the first lines of the message. */
function failures(results, rootDir) {
  const plain = (text) => text.replace(/\u001b\[[0-9;]*m/g, '');
  // Jest's own frames say nothing about the failure.
  const head = (text) =>
    plain(text)
      .split('\n')
      .filter((line) => !/^\s+at .*node_modules/.test(line))
      .slice(0, MESSAGE_LINES)
      .join('\n');
  const out = [];
  for (const suite of results.testResults) {
    const file = path.relative(rootDir, suite.testFilePath);
    for (const t of suite.testResults) {
      if (t.status === 'failed') out.push({ file, name: t.fullName, message: head(t.failureMessages.join('\n')) });
    }
    if (suite.numFailingTests === 0 && (suite.testExecError || suite.failureMessage)) {
      out.push({
        file,
        name: '(the suite itself)',
        message: head(suite.failureMessage ?? String(suite.testExecError)),
      });
    }
  }
  return out;
}

module.exports = SummaryReporter;
