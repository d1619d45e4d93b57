// npm run bench:rolling-restart — what a rolling restart of a 4-member group costs: partitions that changed owner, and
// how long each partition went without a message, kiel vs a kafkajs consumer group, in one run.
//
// A producer writes to every partition of a 12-partition topic every 20 ms while 4 members consume. Each member in
// turn is stopped and started again (a new consumer object, as a restarted process would make):
//   kiel named:   instanceId + rebalanceDelay 30 s, close({ restarting: true }), back under the same name;
//   kiel plain:   no instanceId, close() (the graceful leave of before issue 19);
//   kafkajs:      disconnect(), then a new consumer in the same group (kafkajs 2.2.4 has no static membership).
// "moved" counts the partitions that were handled by another member slot than their first one at any time during
// the restart; "pause" is, per partition, the longest gap between two handled messages during the restart.
//
// Usage: node packages/consumer/bench/rolling-restart.js [--backend zk|etcd|memory] [--rounds N]
// Needs the local stack and built packages (npm run build).
'use strict';

const { Kafka, logLevel } = require('kafkajs');
const { GroupedConsumer, MemoryStore } = require('../dist');
const { makeBackend } = require('./backends');

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const PARTITIONS = 12;
const MEMBERS = 4;

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const BACKEND = arg('backend', 'zk');
const ROUNDS = Number(arg('rounds', 1));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const kafka = new Kafka({ clientId: 'bench-rolling', brokers, logLevel: logLevel.NOTHING });

async function waitFor(condition, timeoutMs, what) {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(5);
  }
}

async function createTopic() {
  const topic = `bench-rolling-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
  await admin.disconnect();
  return topic;
}

async function startProducer(topic) {
  const producer = kafka.producer();
  await producer.connect();
  let running = true;
  const loop = (async () => {
    while (running) {
      await producer.send({
        topic,
        acks: 1,
        messages: Array.from({ length: PARTITIONS }, (_, partition) => ({ partition, value: '1' })),
      });
      await sleep(20);
    }
  })();
  return async () => {
    running = false;
    await loop;
    await producer.disconnect();
  };
}

/** Who handled each partition, and when. Slots are member positions 0..3: a restarted member keeps its slot. */
class Tracker {
  constructor() {
    this.slots = new Map(); // partition → Set of slots seen since reset
    this.last = new Map(); // partition → time of the last message
    this.gap = new Map(); // partition → longest gap since reset
    this.first = new Map(); // partition → slot that handled it first since reset
  }
  seen(slot, partition) {
    const now = performance.now();
    const last = this.last.get(partition);
    if (last !== undefined) this.gap.set(partition, Math.max(this.gap.get(partition) ?? 0, now - last));
    this.last.set(partition, now);
    if (!this.slots.has(partition)) this.slots.set(partition, new Set());
    this.slots.get(partition).add(slot);
  }
  reset() {
    this.slots.clear();
    this.gap.clear();
  }
  /** Partitions handled by more than one slot since reset. */
  moved() {
    return [...this.slots.values()].filter((s) => s.size > 1).length;
  }
  pauses() {
    return [...Array(PARTITIONS).keys()].map((p) => this.gap.get(p) ?? 0);
  }
}

function summary(name, tracker, restartMs) {
  const pauses = tracker.pauses().sort((a, b) => a - b);
  return {
    name,
    moved: tracker.moved(),
    pauseMedian: pauses[Math.floor(pauses.length / 2)],
    pauseMax: pauses.at(-1),
    pauseTotal: pauses.reduce((a, b) => a + b, 0),
    restartMs,
  };
}

/** A rolling restart of a kiel group; `named` uses instanceId, rebalanceDelay and close({ restarting: true }). */
async function benchKiel(named) {
  const topic = await createTopic();
  const group = `bench-rolling-${named ? 'named' : 'plain'}-${Date.now()}`;
  const store = new MemoryStore();
  const tracker = new Tracker();
  const start = async (slot) => {
    const consumer = new GroupedConsumer({
      brokers,
      group,
      topics: [topic],
      backend: makeBackend(BACKEND, store),
      offsetReset: 'latest',
      maxWaitTime: 100,
      ...(named ? { instanceId: `slot-${slot}`, rebalanceDelay: 30_000 } : {}),
    });
    await consumer.connect();
    void consumer.run({ eachBatch: async (batch) => tracker.seen(slot, batch.partition) }).catch(() => undefined);
    return consumer;
  };
  const members = [];
  for (let slot = 0; slot < MEMBERS; slot++) members.push(await start(slot));
  const stopProducer = await startProducer(topic);
  await waitFor(() => tracker.last.size === PARTITIONS, 60_000, 'kiel: every partition delivering');
  await sleep(1_000);
  const results = [];
  for (let round = 0; round < ROUNDS; round++) {
    tracker.reset();
    const restartMs = [];
    for (let slot = 0; slot < MEMBERS; slot++) {
      const t0 = performance.now();
      await members[slot].close(named ? { restarting: true } : {});
      members[slot] = await start(slot);
      const owned = () => members[slot].assignment;
      await waitFor(() => owned().length > 0, 60_000, 'kiel: the restarted member owns partitions');
      const mine = owned().map((id) => Number(id.split(':').pop()));
      await waitFor(() => mine.every((p) => tracker.last.get(p) > t0), 60_000, 'kiel: its partitions deliver');
      restartMs.push(performance.now() - t0);
    }
    // Let anything still moving settle before the round is counted.
    await sleep(1_000);
    results.push(
      summary(
        named ? `kiel ${BACKEND} named, close({ restarting: true })` : `kiel ${BACKEND} plain close()`,
        tracker,
        restartMs,
      ),
    );
  }
  await stopProducer();
  await Promise.all(members.map((m) => m.close()));
  return results;
}

async function benchKafkajs() {
  const topic = await createTopic();
  const groupId = `bench-rolling-kafkajs-${Date.now()}`;
  const tracker = new Tracker();
  const start = async (slot) => {
    const consumer = kafka.consumer({ groupId });
    const assignment = { partitions: [] };
    consumer.on(consumer.events.GROUP_JOIN, (e) => (assignment.partitions = e.payload.memberAssignment[topic] ?? []));
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    await consumer.run({ eachBatch: async ({ batch }) => tracker.seen(slot, batch.partition) });
    return { consumer, assignment };
  };
  const members = [];
  for (let slot = 0; slot < MEMBERS; slot++) members.push(await start(slot));
  const stopProducer = await startProducer(topic);
  const stable = () => {
    const owned = members.flatMap((m) => m.assignment.partitions);
    return (
      owned.length === PARTITIONS &&
      new Set(owned).size === PARTITIONS &&
      members.every((m) => m.assignment.partitions.length > 0)
    );
  };
  await waitFor(stable, 120_000, 'kafkajs: initial assignment');
  await waitFor(() => tracker.last.size === PARTITIONS, 60_000, 'kafkajs: every partition delivering');
  await sleep(1_000);
  const results = [];
  for (let round = 0; round < ROUNDS; round++) {
    tracker.reset();
    const restartMs = [];
    for (let slot = 0; slot < MEMBERS; slot++) {
      const t0 = performance.now();
      await members[slot].consumer.disconnect();
      members[slot] = await start(slot);
      await waitFor(stable, 120_000, 'kafkajs: stable after the restart');
      const mine = members[slot].assignment.partitions;
      await waitFor(() => mine.every((p) => tracker.last.get(p) > t0), 60_000, 'kafkajs: its partitions deliver');
      restartMs.push(performance.now() - t0);
    }
    await sleep(1_000);
    results.push(summary('kafkajs 2.2.4 group (rejoin)', tracker, restartMs));
  }
  await stopProducer();
  await Promise.all(members.map((m) => m.consumer.disconnect()));
  return results;
}

async function main() {
  const rows = [...(await benchKiel(true)), ...(await benchKiel(false)), ...(await benchKafkajs())];
  const pad = (s, n) => String(s).padEnd(n);
  process.stdout.write(
    `rolling restart of ${MEMBERS} members, ${PARTITIONS} partitions, one message per partition every 20 ms\n` +
      `${pad('', 44)}${pad('moved', 7)}${pad('pause p50', 11)}${pad('pause max', 11)}${pad('pause sum', 11)}restart p50\n`,
  );
  for (const r of rows) {
    const restart = [...r.restartMs].sort((a, b) => a - b)[Math.floor(r.restartMs.length / 2)];
    process.stdout.write(
      `${pad(r.name, 44)}${pad(r.moved, 7)}${pad(`${r.pauseMedian.toFixed(0)} ms`, 11)}${pad(`${r.pauseMax.toFixed(0)} ms`, 11)}` +
        `${pad(`${r.pauseTotal.toFixed(0)} ms`, 11)}${restart.toFixed(0)} ms\n`,
    );
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  },
);
