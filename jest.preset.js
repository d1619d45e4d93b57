// Shared Jest settings. Each package's jest.config.js spreads this and adds what it needs.
const path = require('node:path');

// Cluster tests (test/cluster/ in any package) run against the cluster stack (`scripts/stack up --cluster`), in a
// separate phase of `npm test` with KIEL_CLUSTER_TESTS=only (see scripts/test.js); every other run leaves them out.
const clusterRun = process.env.KIEL_CLUSTER_TESTS === 'only';

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  // Type checking is `npm run typecheck` (tsc); ts-jest only transpiles, which keeps test start-up fast.
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.spec.json' }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
  testMatch: clusterRun
    ? ['<rootDir>/test/cluster/**/*.spec.ts']
    : ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts'],
  testPathIgnorePatterns: clusterRun ? ['/node_modules/'] : ['/node_modules/', '/test/cluster/'],
  // A package without cluster tests is fine in the cluster phase.
  passWithNoTests: clusterRun,
  reporters: ['default', path.join(__dirname, 'scripts', 'jest-summary-reporter.js')],
  // kafkajs, which the tests use to produce, otherwise prints TimeoutNegativeWarning on Node 24 (see the file).
  setupFiles: [path.join(__dirname, 'scripts', 'jest-setup.js')],
  // No forceExit: a run that does not end after its last test has left a handle open; find it and close it where
  // it was opened. On 2 cores Jest runs a package's files in its own process (maxWorkers 1), so one leaked handle
  // holds the whole run: the last one was a connected MemoryBackend (its heartbeat interval) that a refused start()
  // left in coordinator-operations.spec.ts. Checked with CI=true on every package's suite (see the commit).
};
