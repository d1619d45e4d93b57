#!/usr/bin/env node
// `npm run soak -- --backend zk|etcd --minutes N --seed S`: the chaos soak (packages/test-kit/src/soak/soak.ts), run
// from the built @kiel/test-kit; the members run the built @kiel/consumer, so `npm run soak` builds first.
// `node scripts/soak.js check DIR` judges a run directory again.
'use strict';
const { main } = require('@kiel/test-kit');

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  },
);
