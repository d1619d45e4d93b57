#!/usr/bin/env node
// `npm test`: build and type-check every package, make sure the local stack is up, run every package's tests
// (unit and integration), then print one total. Exits non-zero if anything failed.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const ensureStack = require('./jest-global-setup.js');

const root = path.resolve(__dirname, '..');
const nxEnv = { NX_DAEMON: 'false', NX_NO_CLOUD: 'true', NX_TUI: 'false' };
const nx = path.join(root, 'node_modules', '.bin', 'nx');
const resultsDir = path.join(root, '.stack', 'test-results');

function step(label, cmd, args) {
  process.stderr.write(`\n==> ${label}\n`);
  const started = Date.now();
  // process.env at spawn time: the stack step exports KAFKA_BROKERS, KCAT, ... for the tests (see ensureStack).
  const r = spawnSync(cmd, args, { cwd: root, env: { ...process.env, ...nxEnv }, stdio: 'inherit' });
  const took = ((Date.now() - started) / 1000).toFixed(1);
  process.stderr.write(`==> ${label}: ${r.status === 0 ? 'ok' : `failed (exit ${r.status})`} in ${took} s\n`);
  return r.status === 0;
}

function total() {
  const sum = { passed: 0, failed: 0, skipped: 0, suitesFailed: 0 };
  if (!fs.existsSync(resultsDir)) return sum;
  for (const f of fs.readdirSync(resultsDir)) {
    const r = JSON.parse(fs.readFileSync(path.join(resultsDir, f), 'utf8'));
    for (const k of Object.keys(sum)) sum[k] += r[k];
  }
  return sum;
}

async function main() {
  fs.rmSync(resultsDir, { recursive: true, force: true });
  let ok = step('build', nx, ['run-many', '-t', 'build', '--outputStyle=stream']);
  ok = ok && step('typecheck', nx, ['run-many', '-t', 'typecheck', '--outputStyle=stream']);
  if (ok) {
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
  const testArgs = ['run-many', '-t', 'test', '--parallel=1', '--outputStyle=stream', ...process.argv.slice(2)];
  ok = ok && step('test', nx, testArgs);
  const sum = total();
  // The same numbers Jest prints as "Tests:" (summed over packages), plus suites that failed outside any test.
  const parts = [`${sum.passed} passed`, `${sum.failed} failed`];
  if (sum.skipped) parts.push(`${sum.skipped} skipped`);
  if (sum.suitesFailed)
    parts.push(`${sum.suitesFailed} suite${sum.suitesFailed === 1 ? '' : 's'} failed outside a test`);
  console.log(`\ntests: ${parts.join(', ')}`);
  process.exit(ok && sum.failed === 0 && sum.suitesFailed === 0 ? 0 : 1);
}

main();
