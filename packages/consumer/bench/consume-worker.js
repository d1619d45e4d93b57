// One benchmark run in its own process, so CPU time and peak RSS belong to one consumer alone.
// usage: node consume-worker.js <kiel|kafkajs> <brokers> <topic> <expected messages>
// Prints one JSON line: messages, bytes, ms from first to last message, CPU seconds over that span, peak RSS.
'use strict';

const [impl, brokers, topic, expectedRaw] = process.argv.slice(2);
const expected = Number(expectedRaw);

let first = 0;
let cpuAtFirst;
let messages = 0;
let bytes = 0;

function onMessages(count, size) {
  if (messages === 0) {
    first = performance.now();
    cpuAtFirst = process.cpuUsage();
  }
  messages += count;
  bytes += size;
  return messages >= expected;
}

function report() {
  const ms = performance.now() - first;
  const cpu = process.cpuUsage(cpuAtFirst);
  process.stdout.write(
    JSON.stringify({
      messages,
      bytes,
      ms,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
    }) + '\n',
  );
}

async function kiel() {
  const { SingleConsumer } = require('../dist');
  const consumer = new SingleConsumer({
    brokers: brokers.split(','),
    topics: [topic],
    from: 'beginning',
    deserializer: 'raw',
    maxWaitTime: 500,
    ...(process.env.KIEL_MAX_BYTES ? { maxBytes: Number(process.env.KIEL_MAX_BYTES) } : {}),
  });
  await consumer.run({
    eachBatch: async (batch) => {
      let size = 0;
      for (const m of batch.messages) size += m.value ? m.value.length : 0;
      if (onMessages(batch.messages.length, size)) void consumer.stop();
    },
  });
  report();
  await consumer.close();
}

async function kafkajs() {
  const { Kafka, logLevel } = require('kafkajs');
  const client = new Kafka({ clientId: 'bench', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
  const consumer = client.consumer({ groupId: `bench-${process.pid}-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise((resolve, reject) => {
    consumer
      .run({
        eachBatch: async ({ batch }) => {
          let size = 0;
          for (const m of batch.messages) size += m.value ? m.value.length : 0;
          if (onMessages(batch.messages.length, size)) resolve();
        },
      })
      .catch(reject);
  });
  report();
  await consumer.disconnect();
}

(impl === 'kiel' ? kiel : kafkajs)().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
