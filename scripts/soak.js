#!/usr/bin/env node
// `npm run soak -- --backend zk|etcd --minutes N --seed S`: the chaos soak (packages/consumer/test/soak/soak.ts),
// loaded from its TypeScript sources through the tests' transpile-only hook. The members run the built
// @kiel/consumer, so `npm run soak` builds first. `node scripts/soak.js check DIR` judges a run directory again.
'use strict';
require('../packages/consumer/test/helpers/register-ts.js');
const { main } = require('../packages/consumer/test/soak/soak.ts');

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  },
);
