// One benchmark run in its own process, so CPU time and peak RSS belong to one consumer alone.
// usage: node consume-worker.js <kiel|kiel-message|kiel-grouped|kafkajs> <brokers> <topic> <expected messages>
//   kiel           SingleConsumer, eachBatch
//   kiel-message   SingleConsumer, eachMessage (the per-message ownership checks and event-loop yields)
//   kiel-grouped   GroupedConsumer on the in-memory backend, eachMessage (claim + fencing clock read per message)
// KIEL_DIST=<dir> runs another build of @kiel/consumer (a baseline commit's dist) instead of this one's.
// KIEL_TRACE=1 subscribes a no-op handler to every kiel:consumer:* tracing channel (per-message spans included).
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

/** KIEL_TRACE=1: a no-op subscriber on every kiel:consumer:* tracing channel, to measure what subscribing costs. */
function subscribeAll(kiel) {
  const dc = require('node:diagnostics_channel');
  const noop = () => {};
  const handlers = { start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop };
  for (const name of Object.values(kiel.channels ?? {})) dc.tracingChannel(name).subscribe(handlers);
}

async function kiel() {
  const kiel = require(process.env.KIEL_DIST ?? '../dist');
  if (process.env.KIEL_TRACE === '1') subscribeAll(kiel);
  const common = {
    brokers: brokers.split(','),
    topics: [topic],
    deserializer: 'raw',
    maxWaitTime: 500,
    ...(process.env.KIEL_MAX_BYTES ? { maxBytes: Number(process.env.KIEL_MAX_BYTES) } : {}),
  };
  const consumer =
    impl === 'kiel-grouped'
      ? new kiel.GroupedConsumer({
          ...common,
          group: `bench-${process.pid}-${Date.now()}`,
          backend: new kiel.MemoryBackend({ store: new kiel.MemoryStore() }),
          autocommit: false,
        })
      : new kiel.SingleConsumer({ ...common, from: 'beginning' });
  if (impl === 'kiel') {
    await consumer.run({
      eachBatch: async (batch) => {
        let size = 0;
        for (const m of batch.messages) size += m.value ? m.value.length : 0;
        if (onMessages(batch.messages.length, size)) void consumer.stop();
      },
    });
  } else {
    let done = false;
    await consumer.run({
      eachMessage: async (m) => {
        if (!done && onMessages(1, m.value ? m.value.length : 0)) {
          done = true;
          void consumer.stop();
        }
      },
    });
  }
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

(impl.startsWith('kiel') ? kiel : kafkajs)().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
