// One benchmark run in its own process, so CPU time and peak RSS belong to one consumer alone.
// usage: node consume-worker.js <impl> <brokers> <topic> <expected messages>
//   kiel           SingleConsumer, eachBatch
//   kiel-message   SingleConsumer, eachMessage (the per-message ownership checks and event-loop yields)
//   kiel-grouped   GroupedConsumer on the in-memory backend, eachMessage (claim + fencing clock read per message)
//   kafkajs        kafkajs 2.2.4, a fresh group from the beginning, eachBatch (its documented throughput path)
//   platformatic   @platformatic/kafka 2.12.1, consume({ mode: 'earliest' }) and 'data' events, string deserializers
//   crab           kafka-crab-js 5.0.0 (librdkafka), createConsumer() + recvBatch(4096, 2), earliest
// KIEL_DIST=<dir> runs another build of @kiel/consumer (a baseline commit's dist) instead of this one's.
// KIEL_TRACE=1 subscribes a no-op handler to every kiel:consumer:* tracing channel (per-message spans included).
// KIEL_POISON=1 turns on kiel-grouped's poison detection (the in-flight marker written before every batch);
// KIEL_GROUPED_BACKEND=zk|etcd puts kiel-grouped on the local ZooKeeper (ZK_HOSTS) or etcd (ETCD_HOSTS).
//
// Every consumer does the same work, in one of two modes (OUTPUT), per batch (platformatic: per 4,096 messages):
//   string (default, the workload issue 18 states): each value becomes a JS string (Buffer#toString, UTF-8;
//          platformatic: its stringDeserializers do that same call), the batch's text is concatenated, one string
//          with a newline per value ('null' for a null value), and written to stdout in one write;
//   bytes: each value's bytes and a newline are copied into one buffer, the buffer is checked to be valid UTF-8
//          (buffer.isUtf8, exact per value since a newline cannot continue a multi-byte sequence) and written.
// stdout is /dev/null; the process exits after <expected> messages, once its consumer is closed. `kiel consume
// --format value` (run by consume.js, not here) always does the bytes work: that is how the CLI prints text.
// The result goes to fd 3 as one JSON line: messages, value bytes, ms from the first message to the last, CPU
// seconds over that span, peak RSS.
'use strict';

const fs = require('node:fs');
const { isUtf8 } = require('node:buffer');

const [impl, brokers, topic, expectedRaw] = process.argv.slice(2);
const expected = Number(expectedRaw);

let first = 0;
let cpuAtFirst;
let messages = 0;
let bytes = 0;
let last = 0;

/** Counts `count` messages of `size` value bytes and writes their text; true once `expected` are in. */
function deliver(count, size, text) {
  if (messages === 0) {
    first = performance.now();
    cpuAtFirst = process.cpuUsage();
  }
  messages += count;
  bytes += size;
  if (text) fs.writeSync(1, text);
  if (messages >= expected) {
    last = performance.now();
    return true;
  }
  return false;
}

function report() {
  const cpu = process.cpuUsage(cpuAtFirst);
  fs.writeSync(
    3,
    JSON.stringify({
      messages,
      bytes,
      ms: last - first,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      maxRssMiB: process.resourceUsage().maxRSS / 1024,
    }) + '\n',
  );
}

const NULL_LINE = Buffer.from('null\n');
const OUTPUT = process.env.OUTPUT ?? 'string';
if (OUTPUT !== 'string' && OUTPUT !== 'bytes') throw new Error(`OUTPUT=${OUTPUT}: expected string or bytes`);

/** One batch of Buffer values as `kiel consume --format value` prints it (see the header). */
function batchText(list, valueOf, limit) {
  const n = Math.min(list.length, limit);
  let size = 0;
  if (OUTPUT === 'string') {
    let out = '';
    for (let i = 0; i < n; i++) {
      const v = valueOf(list[i]);
      if (v) {
        out += v.toString() + '\n';
        size += v.length;
      } else out += 'null\n';
    }
    return { out, size, n };
  }
  let total = 0;
  for (let i = 0; i < n; i++) {
    const v = valueOf(list[i]);
    if (v) size += v.length;
    total += v ? v.length + 1 : NULL_LINE.length;
  }
  const out = Buffer.allocUnsafe(total);
  let pos = 0;
  for (let i = 0; i < n; i++) {
    const v = valueOf(list[i]) ?? NULL_LINE;
    out.set(v, pos);
    pos += v.length;
    if (v !== NULL_LINE) out[pos++] = 0x0a;
  }
  if (!isUtf8(out)) throw new Error('a value is not UTF-8 text (the CLI would print it as base64)');
  return { out, size, n };
}

/** KIEL_TRACE=1: a no-op subscriber on every kiel:consumer:* tracing channel, to measure what subscribing costs. */
function subscribeAll(kiel) {
  const dc = require('node:diagnostics_channel');
  const noop = () => {};
  const handlers = { start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop };
  for (const name of Object.values(kiel.channels ?? {})) dc.tracingChannel(name).subscribe(handlers);
}

/** kiel-grouped's backend: in memory by default, or the local stack's ZooKeeper or etcd. */
function groupedBackend(kiel) {
  const root = `kiel-bench-${process.pid}`;
  if (process.env.KIEL_GROUPED_BACKEND === 'zk') {
    const { ZooKeeperBackend } = require('@kiel/allocator-zk');
    return new ZooKeeperBackend({ hosts: process.env.ZK_HOSTS ?? '127.0.0.1:2181', rootPath: `/${root}` });
  }
  if (process.env.KIEL_GROUPED_BACKEND === 'etcd') {
    const { EtcdBackend } = require('@kiel/allocator-etcd');
    return new EtcdBackend({ hosts: process.env.ETCD_HOSTS ?? '127.0.0.1:2379', prefix: `${root}/` });
  }
  return new kiel.MemoryBackend({ store: new kiel.MemoryStore() });
}

async function kiel() {
  const kiel = require(process.env.KIEL_DIST ?? '../dist');
  if (process.env.KIEL_TRACE === '1') subscribeAll(kiel);
  const common = {
    brokers: brokers.split(','),
    topics: [topic],
    deserializer: 'raw',
    ...(process.env.KIEL_MAX_BYTES ? { maxBytes: Number(process.env.KIEL_MAX_BYTES) } : {}),
  };
  const consumer =
    impl === 'kiel-grouped'
      ? new kiel.GroupedConsumer({
          ...common,
          group: `bench-${process.pid}-${Date.now()}`,
          backend: groupedBackend(kiel),
          autocommit: false,
          ...(process.env.KIEL_POISON === '1' ? { poison: { onPoison: () => undefined } } : {}),
        })
      : new kiel.SingleConsumer({ ...common, from: 'beginning' });
  let done = false;
  if (impl === 'kiel') {
    await consumer.run({
      eachBatch: (batch) => {
        if (done) return;
        const { out, size, n } = batchText(batch.messages, (m) => m.value, expected - messages);
        if (deliver(n, size, out)) {
          done = true;
          void consumer.stop();
        }
      },
    });
  } else {
    await consumer.run({
      eachMessage: (m) => {
        if (!done && deliver(1, m.value ? m.value.length : 0, batchText([m], (x) => x.value, 1).out)) {
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
  const { Kafka, logLevel, CompressionCodecs, CompressionTypes } = require('kafkajs');
  // kafkajs ships only gzip; users plug in codecs per type. It gets the same native decompressors we use.
  const { lz4Codec, zstdCodec, snappyCodec } = require('@kiel/protocol');
  for (const [type, codec] of [
    [CompressionTypes.LZ4, lz4Codec],
    [CompressionTypes.ZSTD, zstdCodec],
    [CompressionTypes.Snappy, snappyCodec],
  ]) {
    CompressionCodecs[type] = () => ({
      compress: async (encoder) => codec.compress(encoder.buffer),
      decompress: async (buffer) => codec.decompress(buffer, { maxOutputBytes: 1 << 28 }),
    });
  }
  const client = new Kafka({ clientId: 'bench', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
  const consumer = client.consumer({ groupId: `bench-${process.pid}-${Date.now()}` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise((resolve, reject) => {
    let done = false;
    consumer.on(consumer.events.CRASH, (e) => reject(e.payload.error));
    consumer
      .run({
        eachBatchAutoResolve: true,
        eachBatch: async ({ batch }) => {
          if (done) return;
          const { out, size, n } = batchText(batch.messages, (m) => m.value, expected - messages);
          if (deliver(n, size, out)) {
            done = true;
            resolve(); // disconnect() inside eachBatch waits for this batch: it would hang
          }
        },
      })
      .catch(reject);
  });
  report();
  await consumer.disconnect();
}

async function platformatic() {
  const { Consumer, stringDeserializers } = require('@platformatic/kafka');
  const consumer = new Consumer({
    groupId: `bench-${process.pid}-${Date.now()}`,
    clientId: 'bench',
    bootstrapBrokers: brokers.split(','),
    // Buffers (its default) for the same work as the others; its string deserializers for OUTPUT=string.
    ...(OUTPUT === 'string' ? { deserializers: stringDeserializers } : {}),
  });
  const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
  await new Promise((resolve, reject) => {
    let out = '';
    let pending = 0;
    let size = 0;
    let held = [];
    let done = false;
    stream.on('error', reject);
    stream.on('data', (message) => {
      if (done) return;
      const v = message.value;
      if (OUTPUT === 'string') {
        out += (v ?? 'null') + '\n';
        size += v ? Buffer.byteLength(v) : 0;
      } else held.push(v);
      // Output in chunks, as the others write once per batch.
      if (++pending === 4096 || messages + pending >= expected) {
        if (OUTPUT !== 'string') ({ out, size } = batchText(held, (x) => x, pending));
        const finished = deliver(pending, size, out);
        out = '';
        held = [];
        pending = 0;
        size = 0;
        if (finished) {
          done = true;
          resolve();
        }
      }
    });
  });
  report();
  await consumer.close(true);
}

async function crab() {
  const { KafkaClient } = require('kafka-crab-js');
  const client = new KafkaClient({ brokers, clientId: 'bench', logLevel: 'error' });
  const consumer = client.createConsumer({
    groupId: `bench-${process.pid}-${Date.now()}`,
    enableAutoCommit: false,
    configuration: { 'auto.offset.reset': 'earliest' },
  });
  await consumer.subscribe(topic);
  for (;;) {
    const batch = await consumer.recvBatch(4096, 2);
    if (batch.length === 0) continue;
    const { out, size, n } = batchText(batch, (m) => m.payload, expected - messages);
    if (deliver(n, size, out)) break;
  }
  report();
  await consumer.disconnect();
}

const impls = { kafkajs, platformatic, crab };
(impl.startsWith('kiel') ? kiel : impls[impl])().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
