// A GroupedConsumer in its own process that closes on SIGTERM: used by @kiel/consumer's SIGTERM test. Runs on the
// built package (dist), as an application would. Usage: node sigterm-member.js <brokers> <group> <topic>.
'use strict';
const { GroupedConsumer, MemoryBackend, MemoryStore } = require('@kiel/consumer');

const [brokers, group, topic] = process.argv.slice(2);
// Without autocommit, the only commit is the one close() makes: the test checks it happened.
const consumer = new GroupedConsumer({
  brokers: brokers.split(','),
  group,
  topics: [topic],
  backend: new MemoryBackend({ store: new MemoryStore() }),
  autocommit: false,
  maxWaitTime: 100,
});
let handled = 0;
process.once('SIGTERM', () => {
  consumer.close().then(
    () => process.exit(0),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
});
consumer
  .run({
    eachMessage: async () => {
      handled++;
      process.stdout.write(`handled ${handled}\n`);
    },
  })
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
