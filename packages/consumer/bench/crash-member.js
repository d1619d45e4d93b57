// One GroupedConsumer in a child process of bench:rebalance, to be SIGKILLed. It reports on stdout, one line each:
//   ID <member id>   after each rebalance (before ASSIGNED)
//   ASSIGNED <generation> <comma-separated topic:partition>   after each rebalance
//   CONTACT <wall-clock ms>   each time the backend's last contact (the send time of the last renewal) advances
// Usage: node crash-member.js <zk|etcd> <brokers> <group> <topic> <strategy>
'use strict';

const { GroupedConsumer } = require('../dist');
const { makeBackend } = require('./backends');

const [kind, brokers, group, topic, strategy] = process.argv.slice(2);
const say = (line) => process.stdout.write(`${line}\n`);
// The bench is gone (it failed, or was stopped): so is the reason to run.
process.stdout.on('error', () => process.exit(0));
const backend = makeBackend(kind);
const consumer = new GroupedConsumer({
  brokers: brokers.split(','),
  group,
  topics: [topic],
  backend,
  strategy,
  deserializer: 'raw',
  maxWaitTime: 500,
  offsetReset: 'latest',
});
consumer.on('rebalance', ({ generation }) => {
  say(`ID ${consumer.memberId}`);
  say(`ASSIGNED ${generation} ${consumer.assignment.join(',')}`);
});
let contact = 0;
setInterval(() => {
  if (backend.lastContact > contact) {
    contact = backend.lastContact;
    // lastContact is this process's performance.now(); the wall clock makes it comparable in the parent.
    say(`CONTACT ${performance.timeOrigin + contact}`);
  }
}, 5);
consumer.run({ eachBatch: async () => undefined }).catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
