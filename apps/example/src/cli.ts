#!/usr/bin/env node
/* eslint-disable @typescript-eslint/no-require-imports */
// Node's on-disk code cache (Node 22.1 and later; a no-op before): the CLI loads about 130 modules, and compiling
// them is most of its start-up. Enabled before anything else is required, so that they all use it.
const { enableCompileCache } = require('node:module') as { enableCompileCache?: () => unknown };
enableCompileCache?.();
const { main } = require('./program') as typeof import('./program');

void main(process.argv).then((code: number) => {
  process.exitCode = code;
});
