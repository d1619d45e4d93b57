#!/usr/bin/env node
// `npm test`: build and type-check every package, make sure the local stack is up, run every package's tests
// (unit and integration), then print one total. Exits non-zero if anything failed.
//
// The cluster phase: with CI=true or KIEL_CLUSTER_TESTS=1 it then brings up the cluster stack (`scripts/stack up
// --cluster`: 3 Kafka brokers, 3 ZooKeeper servers, 3 etcd members) and runs every package's test/cluster/ specs
// against it (Jest with KIEL_CLUSTER_TESTS=only). KIEL_CLUSTER_TESTS=0 leaves it out (also under CI, for a second
// Node run); `npm run test:cluster` runs the cluster phase alone. A cluster that cannot be had fails the run.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const ensureStack = require('./jest-global-setup.js');

const root = path.resolve(__dirname, '..');
const nxEnv = { NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false' };
const nx = path.join(root, 'node_modules', '.bin', 'nx');
const resultsDir = path.join(root, '.stack', 'test-results');

function step(label, cmd, args, extraEnv = {}) {
  process.stderr.write(`\n==> ${label}\n`);
  const started = Date.now();
  // process.env at spawn time: the stack step exports KAFKA_BROKERS, KCAT, ... for the tests (see ensureStack).
  const r = spawnSync(cmd, args, { cwd: root, env: { ...process.env, ...nxEnv, ...extraEnv }, stdio: 'inherit' });
  const took = ((Date.now() - started) / 1000).toFixed(1);
  process.stderr.write(`==> ${label}: ${r.status === 0 ? 'ok' : `failed (exit ${r.status})`} in ${took} s\n`);
  return r.status === 0;
}

function total() {
  const sum = { passed: 0, failed: 0, skipped: 0, suitesFailed: 0, failures: [] };
  if (!fs.existsSync(resultsDir)) return sum;
  for (const f of fs.readdirSync(resultsDir).sort()) {
    const r = JSON.parse(fs.readFileSync(path.join(resultsDir, f), 'utf8'));
    for (const k of ['passed', 'failed', 'skipped', 'suitesFailed']) sum[k] += r[k];
    for (const failure of r.failures ?? []) sum.failures.push({ project: f.replace(/\.json$/, ''), ...failure });
  }
  return sum;
}

/** 'all' (both phases), 'none' (single-node phase only) or 'only' (cluster phase only). */
function clusterMode(argv) {
  if (argv.includes('--cluster-only')) return 'only';
  const flag = process.env.KIEL_CLUSTER_TESTS;
  if (flag === '0' || flag === 'false') return 'none';
  if (flag === '1' || flag === 'true' || process.env.CI === 'true') return 'all';
  return 'none';
}

async function main() {
  fs.rmSync(resultsDir, { recursive: true, force: true });
  const mode = clusterMode(process.argv);
  const passThrough = process.argv.slice(2).filter((a) => a !== '--cluster-only');
  let ok = step('build', nx, ['run-many', '-t', 'build', '--outputStyle=stream']);
  ok = ok && step('typecheck', nx, ['run-many', '-t', 'typecheck', '--outputStyle=stream']);
  if (ok && mode !== 'only') {
    // Same rule as each package's Jest global setup: use servers that already answer, else `scripts/stack up`;
    // fail (never skip) when they cannot be had.
    process.stderr.write('\n==> stack\n');
    try {
      await ensureStack();
    } catch (err) {
      console.error(err instanceof Error ? err.message : String(err));
      ok = false;
    }
  }
  // One package at a time: the suites share three servers and two cores.
  const testArgs = ['run-many', '-t', 'test', '--parallel=1', '--outputStyle=stream', ...passThrough];
  // The cluster phase runs even when the single-node phase failed, so one run reports both.
  let testsOk = true;
  if (ok && mode !== 'only') testsOk = step('test', nx, testArgs);
  if (ok && mode !== 'none') {
    process.stderr.write('\n==> cluster stack\n');
    const started = Date.now();
    try {
      await require('./cluster').ensureUp();
      const rss = require('./cluster').rss();
      process.stderr.write(
        `==> cluster stack: up in ${((Date.now() - started) / 1000).toFixed(1)} s, ${rss.total} MiB resident\n`,
      );
      testsOk = step('cluster tests', nx, testArgs, { KIEL_CLUSTER_TESTS: 'only' }) && testsOk;
    } catch (err) {
      console.error(err instanceof Error ? err.message : String(err));
      testsOk = false;
    }
  }
  ok = ok && testsOk;
  const sum = total();
  // Each failure again, last: a CI log is read from its tail.
  for (const f of sum.failures) {
    console.log(`\nFAILED ${f.project}: ${f.file}\n  ${f.name}\n${f.message.replace(/^/gm, '    ')}`);
  }
  // The same numbers Jest prints as "Tests:" (summed over packages), plus suites that failed outside any test.
  const parts = [`${sum.passed} passed`, `${sum.failed} failed`];
  if (sum.skipped) parts.push(`${sum.skipped} skipped`);
  if (sum.suitesFailed)
    parts.push(`${sum.suitesFailed} suite${sum.suitesFailed === 1 ? '' : 's'} failed outside a test`);
  console.log(`\ntests: ${parts.join(', ')}`);
  process.exit(ok && sum.failed === 0 && sum.suitesFailed === 0 ? 0 : 1);
}

main();
