const preset = require('../../jest.preset');

/** @type {import('jest').Config} */
module.exports = {
  ...preset,
  displayName: require('./package.json').name,
  // Integration tests run against the real servers of scripts/stack.
  globalSetup: require.resolve('../../scripts/jest-global-setup.js'),
  testTimeout: 60_000,
};
