// The consumer code of a group member running in a process of its own, shared by the ZooKeeper and etcd packages'
// multi-process tests: their fixtures differ only in the line that makes the backend. The consumer is the built
// @kiel/consumer (dist), as an application runs it.
//
// The fixture passes one JSON argument:
//   { brokers: string[], group, topic, strategy?, weight?, handleMs?, hosts, namespace, sessionTimeout }
// (`namespace` and `sessionTimeout`, ms, are for the backend line). It reports one line per fact on stdout,
// written synchronously (stdout is a pipe), so nothing reported is lost when the process is killed:
//   READY <member id>                                            connected and registered
//   ASSIGNED <generation> <comma-separated topic:partition>       after each generation applied
//   HANDLED <partition> <start> <end> <comma-separated offsets>   per batch, wall-clock ms around the handler
//   COMMITTED <partition> <offset>                                per committed partition
//   LEFT                                                          after a graceful close on SIGTERM (then exit 0)
'use strict';

const { GroupedConsumer } = require('@kiel/consumer');

const wallClock = () => performance.timeOrigin + performance.now();
const say = (line) => process.stdout.write(`${line}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads the JSON argument, makes the backend with `makeBackend(config)` and runs the member until SIGTERM. */
function runMember(makeBackend) {
  const config = JSON.parse(process.argv[2]);
  const consumer = new GroupedConsumer({
    brokers: config.brokers,
    group: config.group,
    topics: [config.topic],
    backend: makeBackend(config),
    strategy: config.strategy ?? 'sticky',
    ...(config.weight !== undefined ? { weight: config.weight } : {}),
    deserializer: 'raw',
    maxWaitTime: 100,
  });
  // Once per generation applied (also when this member's partitions stay the same), and after a close's hand-back.
  consumer.on('rebalance', ({ generation }) => say(`ASSIGNED ${generation} ${consumer.assignment.join(',')}`));
  consumer.on('commit', ({ offsets }) => {
    for (const o of offsets) say(`COMMITTED ${o.partition} ${o.offset}`);
  });
  consumer.on('error', (error) => process.stderr.write(`${error.code} ${error.message}\n`));
  const fail = (error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  };
  process.once('SIGTERM', () => {
    consumer.close().then(() => {
      say('LEFT');
      process.exit(0);
    }, fail);
  });
  consumer
    .connect()
    .then(() => {
      say(`READY ${consumer.memberId}`);
      return consumer.run({
        eachBatch: async (batch) => {
          const start = wallClock();
          // A handler that takes a moment, so that two owners at once would show as overlapping intervals.
          if (config.handleMs) await sleep(Math.random() * config.handleMs);
          say(`HANDLED ${batch.partition} ${start} ${wallClock()} ${batch.messages.map((m) => m.offset).join(',')}`);
        },
      });
    })
    .catch(fail);
}

module.exports = { runMember };
