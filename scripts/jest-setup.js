// Runs before every test file (jest.preset.js, setupFiles). The tests' own helpers produce and administer topics
// with kafkajs 2.2.4, whose request queue makes Node 24 print TimeoutNegativeWarning: the same fix the kiel CLI
// ships (apps/example/src/kafkajs-fix.ts, where the cause is explained) applies to them, so that `npm test` prints
// no runtime warning either. Each test file has its own module registry, hence its own kafkajs to fix.
require('../apps/example/src/kafkajs-fix.ts').fixKafkajsRequestQueue();
