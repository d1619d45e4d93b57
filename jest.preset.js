// Shared Jest settings. Each package's jest.config.js spreads this and adds what it needs.
const path = require('node:path');

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  // Type checking is `npm run typecheck` (tsc); ts-jest only transpiles, which keeps test start-up fast.
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.spec.json' }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
  testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/test/**/*.spec.ts'],
  reporters: ['default', path.join(__dirname, 'scripts', 'jest-summary-reporter.js')],
  // kafkajs, which the tests use to produce, otherwise prints TimeoutNegativeWarning on Node 24 (see the file).
  setupFiles: [path.join(__dirname, 'scripts', 'jest-setup.js')],
  // In CI a failed assertion that skips a test's close() must not leave Jest waiting on an open socket for good:
  // the run ends once the tests are done (locally Jest still warns about what was left open).
  forceExit: process.env.CI === 'true',
};
