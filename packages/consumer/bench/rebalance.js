// npm run bench:rebalance — how long a membership change interrupts consumption, kiel vs a kafkajs consumer group,
// in one run. A producer writes to every partition of a 12-partition topic every few ms while 3 members consume.
//
//   leave: a member closes gracefully; the time until every partition it owned delivers a message to a new owner.
//   join:  a new member starts (connect included); the time until it handles its first message.
//
// Usage: node packages/consumer/bench/rebalance.js [--backend memory|zk|etcd ...] [--trials N] [--kafkajs-trials N]
// Prints p50 and p99 per backend and for kafkajs. Needs the local stack and built packages (npm run build).
'use strict';

const { Kafka, logLevel } = require('kafkajs');
const { GroupedConsumer, MemoryBackend, MemoryStore } = require('../dist');

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const zkHosts = process.env.ZK_HOSTS ?? '127.0.0.1:2181';
const etcdHosts = process.env.ETCD_HOSTS ?? '127.0.0.1:2379';
const PARTITIONS = 12;

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const backends = process.argv.flatMap((a, i) => (process.argv[i - 1] === '--backend' ? [a] : []));
if (backends.length === 0) backends.push('memory');
const TRIALS = Number(arg('trials', 20));
const KAFKAJS_TRIALS = Number(arg('kafkajs-trials', 5));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const kafka = new Kafka({ clientId: 'bench-rebalance', brokers, logLevel: logLevel.NOTHING });

function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

async function waitFor(condition, timeoutMs, what) {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(1);
  }
}

async function createTopic() {
  const topic = `bench-rebalance-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
  await admin.disconnect();
  return topic;
}

/** Writes one message to every partition every `intervalMs`. */
async function startProducer(topic, intervalMs = 5) {
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
      await sleep(intervalMs);
    }
  })();
  return async () => {
    running = false;
    await loop;
    await producer.disconnect();
  };
}

/** Per partition: the time and member of the last message handled. */
class Tracker {
  constructor() {
    this.last = new Map();
    this.firstByMember = new Map();
  }
  seen(member, partition) {
    const now = performance.now();
    this.last.set(partition, { member, at: now });
    if (!this.firstByMember.has(member)) this.firstByMember.set(member, now);
  }
}

function makeBackendFactory(kind) {
  if (kind === 'memory') {
    const store = new MemoryStore();
    return () => new MemoryBackend({ store });
  }
  if (kind === 'zk') {
    // The backends depend on this package: a bench-only import must not become a build dependency in Nx's graph.
    // nx-ignore-next-line
    const { ZooKeeperBackend } = require('@kiel/allocator-zk');
    return () => new ZooKeeperBackend({ hosts: zkHosts, sessionTimeout: 6000 });
  }
  if (kind === 'etcd') {
    // nx-ignore-next-line
    const { EtcdBackend } = require('@kiel/allocator-etcd');
    return () => new EtcdBackend({ hosts: etcdHosts, ttl: 5 });
  }
  throw new Error(`unknown backend ${kind}`);
}

async function benchKiel(kind) {
  const topic = await createTopic();
  const stopProducer = await startProducer(topic);
  const backend = makeBackendFactory(kind);
  const group = `bench-${kind}-${Date.now()}`;
  const tracker = new Tracker();
  let n = 0;
  const start = async () => {
    const name = `m${n++}`;
    const consumer = new GroupedConsumer({
      brokers,
      group,
      topics: [topic],
      backend: backend(),
      deserializer: 'raw',
      maxWaitTime: 500,
      offsetReset: 'latest',
    });
    await consumer.connect();
    const running = consumer.run({ eachBatch: async (batch) => tracker.seen(name, batch.partition) });
    return { name, consumer, running };
  };
  const members = [await start(), await start(), await start()];
  const stable = () => {
    const owned = members.flatMap((m) => m.consumer.assignment);
    const generations = new Set(members.map((m) => m.consumer.generation));
    return (
      owned.length === PARTITIONS &&
      new Set(owned).size === PARTITIONS &&
      generations.size === 1 &&
      members.every((m) => m.consumer.assignment.length > 0)
    );
  };
  await waitFor(stable, 30_000, 'initial allocation');
  const leave = [];
  const join = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    // Leave: the oldest member goes; every partition it owned must deliver to someone else.
    const leaving = members.shift();
    const owned = leaving.consumer.assignment.map((id) => Number(id.split(':').pop()));
    const t0 = performance.now();
    await leaving.consumer.close();
    await leaving.running;
    await waitFor(
      () =>
        owned.every((p) => {
          const l = tracker.last.get(p);
          return l && l.member !== leaving.name && l.at > t0;
        }),
      30_000,
      'leave handoff',
    );
    leave.push(performance.now() - t0);
    await waitFor(stable, 30_000, 'stable after leave');
    // Join: a new member starts; the time until its first message.
    const t1 = performance.now();
    const joined = await start();
    members.push(joined);
    await waitFor(() => tracker.firstByMember.has(joined.name), 30_000, 'join first message');
    join.push(tracker.firstByMember.get(joined.name) - t1);
    await waitFor(stable, 30_000, 'stable after join');
    process.stderr.write(
      `  ${kind} trial ${trial + 1}: leave ${leave.at(-1).toFixed(1)} ms, join ${join.at(-1).toFixed(1)} ms\n`,
    );
  }
  await Promise.all(members.map((m) => m.consumer.close()));
  await stopProducer();
  return { leave, join };
}

async function benchKafkajs() {
  const topic = await createTopic();
  const stopProducer = await startProducer(topic);
  const groupId = `bench-kafkajs-${Date.now()}`;
  const tracker = new Tracker();
  let n = 0;
  const start = async () => {
    const name = `k${n++}`;
    const consumer = kafka.consumer({ groupId });
    const assignment = { partitions: [] };
    consumer.on(consumer.events.GROUP_JOIN, (e) => (assignment.partitions = e.payload.memberAssignment[topic] ?? []));
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    await consumer.run({ eachBatch: async ({ batch }) => tracker.seen(name, batch.partition) });
    return { name, consumer, assignment };
  };
  const members = [await start(), await start(), await start()];
  const stable = () => {
    const owned = members.flatMap((m) => m.assignment.partitions);
    return (
      owned.length === PARTITIONS &&
      new Set(owned).size === PARTITIONS &&
      members.every((m) => m.assignment.partitions.length > 0)
    );
  };
  await waitFor(stable, 60_000, 'kafkajs initial assignment');
  const leave = [];
  const join = [];
  for (let trial = 0; trial < KAFKAJS_TRIALS; trial++) {
    const leaving = members.shift();
    const owned = [...leaving.assignment.partitions];
    const t0 = performance.now();
    await leaving.consumer.disconnect();
    await waitFor(
      () =>
        owned.every((p) => {
          const l = tracker.last.get(p);
          return l && l.member !== leaving.name && l.at > t0;
        }),
      60_000,
      'kafkajs leave',
    );
    leave.push(performance.now() - t0);
    await waitFor(stable, 60_000, 'kafkajs stable after leave');
    const t1 = performance.now();
    const joined = await start();
    members.push(joined);
    await waitFor(() => tracker.firstByMember.has(joined.name), 60_000, 'kafkajs join');
    join.push(tracker.firstByMember.get(joined.name) - t1);
    await waitFor(stable, 60_000, 'kafkajs stable after join');
    process.stderr.write(
      `  kafkajs trial ${trial + 1}: leave ${leave.at(-1).toFixed(0)} ms, join ${join.at(-1).toFixed(0)} ms\n`,
    );
  }
  await Promise.all(members.map((m) => m.consumer.disconnect()));
  await stopProducer();
  return { leave, join };
}

async function main() {
  const rows = [];
  for (const kind of backends) rows.push([`kiel (${kind})`, await benchKiel(kind), TRIALS]);
  rows.push(['kafkajs group', await benchKafkajs(), KAFKAJS_TRIALS]);
  console.log(
    '\nrebalance latency, ms (graceful leave: until every moved partition delivers again; join: until the first message)',
  );
  console.log('consumer           trials   leave p50   leave p99    join p50    join p99');
  for (const [name, r, trials] of rows) {
    const f = (x) => x.toFixed(1).padStart(10);
    console.log(
      `${name.padEnd(18)} ${String(trials).padStart(6)}  ${f(percentile(r.leave, 50))}  ${f(percentile(r.leave, 99))}  ${f(percentile(r.join, 50))}  ${f(percentile(r.join, 99))}`,
    );
  }
  const peer = rows.at(-1)[1];
  for (const [name, r] of rows.slice(0, -1)) {
    console.log(
      `${name}: leave p50 ${(percentile(peer.leave, 50) / percentile(r.leave, 50)).toFixed(0)}x faster than kafkajs, join p50 ${(percentile(peer.join, 50) / percentile(r.join, 50)).toFixed(1)}x`,
    );
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
