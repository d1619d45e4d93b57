// npm run bench:rebalance — how long a membership change interrupts consumption, kiel vs a kafkajs consumer group,
// in one run. A producer writes to every partition of a 12-partition topic every few ms while 3 members consume.
//
//   leave: a member closes gracefully; the time until every partition it owned delivers a message to a new owner.
//   join:  a new member starts (connect included); the time until it handles its first message.
//   writes: backend write calls (join, leave, writeRecord, claim, release) of the in-process members during each
//          leave and join, next to the number of partitions that changed owner.
//   crash: a member in a child process is SIGKILLed; the time until every partition it owned delivers a message
//          to a new owner. It is the session timeout (lease TTL) plus overhead; the overhead is also given from the
//          moment the session could expire at the earliest (the child's last contact + the timeout).
//
// Usage: node packages/consumer/bench/rebalance.js [--backend memory|zk|etcd ...] [--trials N] [--kafkajs-trials N]
//          [--crash-trials N] [--strategy naive|sticky|...]
// Prints p50 and p99 per backend and for kafkajs. Needs the local stack and built packages (npm run build).
'use strict';

const { spawn } = require('node:child_process');
const path = require('node:path');
const { Kafka, logLevel } = require('kafkajs');
const { GroupedConsumer, MemoryStore } = require('../dist');
const { instrument, makeBackend, SESSION_TIMEOUT_MS } = require('./backends');

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const PARTITIONS = 12;

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const backends = process.argv.flatMap((a, i) => (process.argv[i - 1] === '--backend' ? [a] : []));
if (backends.length === 0) backends.push('memory');
const TRIALS = Number(arg('trials', 20));
const KAFKAJS_TRIALS = Number(arg('kafkajs-trials', 5));
// A crash needs a member in another process: the memory backend has none, so it gets no crash trials.
const CRASH_TRIALS = Number(arg('crash-trials', 5));
/** The allocation strategy of every kiel member: kiel's naive by default; sticky moves only what it must. */
const STRATEGY = arg('strategy', 'naive');

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

/** Backends of `kind` whose write calls add to `writes.writes`: the bench's view, the backend is untouched. */
function makeBackendFactory(kind, writes) {
  const store = kind === 'memory' ? new MemoryStore() : undefined;
  return () => instrument(makeBackend(kind, store), writes);
}

/** partition → owner name, over `members` (each `{ name, consumer }`). */
function owners(members) {
  const map = new Map();
  for (const m of members) for (const id of m.consumer.assignment) map.set(id, m.name);
  return map;
}

/** How many partitions changed owner (or lost or gained one) between two `owners` maps. */
function moved(before, after) {
  let n = 0;
  for (const id of new Set([...before.keys(), ...after.keys()])) if (before.get(id) !== after.get(id)) n++;
  return n;
}

/**
 * A member of `group` in a child process (crash-member.js), following what it reports: its assignment and
 * generation, and its backend's last contact on the wall clock.
 */
function startCrashMember(kind, group, topic) {
  const child = spawn(
    process.execPath,
    [path.join(__dirname, 'crash-member.js'), kind, brokers.join(','), group, topic, STRATEGY],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const state = { child, name: `crash-${child.pid}`, assignment: [], generation: -1, lastContactWall: 0 };
  state.exited = new Promise((resolve) => child.on('close', resolve));
  let pending = '';
  child.stdout.on('data', (chunk) => {
    const lines = (pending + chunk.toString()).split('\n');
    pending = lines.pop();
    for (const line of lines) {
      const [what, a, b] = line.split(' ');
      if (what === 'ASSIGNED') {
        state.generation = Number(a);
        state.assignment = b ? b.split(',') : [];
      } else if (what === 'ID') {
        state.memberId = a;
      } else if (what === 'CONTACT') {
        state.lastContactWall = Number(a);
      }
    }
  });
  return state;
}

async function benchKiel(kind) {
  const topic = await createTopic();
  const stopProducer = await startProducer(topic);
  const writes = { writes: 0 };
  const backend = makeBackendFactory(kind, writes);
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
      strategy: STRATEGY,
      deserializer: 'raw',
      maxWaitTime: 500,
      offsetReset: 'latest',
    });
    await consumer.connect();
    const running = consumer.run({ eachBatch: async (batch) => tracker.seen(name, batch.partition) });
    return { name, consumer, running };
  };
  const members = [await start(), await start(), await start()];
  /** A member in another process, while a crash trial runs. */
  let remote;
  const stable = () => {
    const views = members.map((m) => m.consumer);
    if (remote) views.push(remote);
    const owned = views.flatMap((v) => v.assignment);
    const generations = new Set(views.map((v) => v.generation));
    return (
      owned.length === PARTITIONS &&
      new Set(owned).size === PARTITIONS &&
      generations.size === 1 &&
      views.every((v) => v.assignment.length > 0)
    );
  };
  await waitFor(stable, 30_000, 'initial allocation');
  const leave = [];
  const join = [];
  const leaveWrites = [];
  const leaveMoved = [];
  const joinWrites = [];
  const joinMoved = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    // Leave: the oldest member goes; every partition it owned must deliver to someone else.
    const leaving = members.shift();
    const owned = leaving.consumer.assignment.map((id) => Number(id.split(':').pop()));
    let before = owners([leaving, ...members]);
    let written = writes.writes;
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
    leaveWrites.push(writes.writes - written);
    leaveMoved.push(moved(before, owners(members)));
    // Join: a new member starts; the time until its first message.
    before = owners(members);
    written = writes.writes;
    const t1 = performance.now();
    const joined = await start();
    members.push(joined);
    await waitFor(() => tracker.firstByMember.has(joined.name), 30_000, 'join first message');
    join.push(tracker.firstByMember.get(joined.name) - t1);
    await waitFor(stable, 30_000, 'stable after join');
    joinWrites.push(writes.writes - written);
    joinMoved.push(moved(before, owners(members)));
    process.stderr.write(
      `  ${kind} trial ${trial + 1}: leave ${leave.at(-1).toFixed(1)} ms (${leaveWrites.at(-1)} writes, ${leaveMoved.at(-1)} moved), ` +
        `join ${join.at(-1).toFixed(1)} ms (${joinWrites.at(-1)} writes, ${joinMoved.at(-1)} moved)\n`,
    );
  }
  const crash = [];
  const beyondExpiry = [];
  const serverExpiry = [];
  const handoff = [];
  // An observer session (not a member) watching the member list: when the crashed member's entry vanishes is when
  // the server ended its session, which splits the overhead into the server's part and kiel's handoff.
  const observer = kind === 'memory' ? undefined : makeBackend(kind);
  const gone = new Map();
  if (observer) {
    await observer.connect();
    let present = new Set();
    observer.watchMembers(group, (list) => {
      const now = performance.now();
      const ids = new Set(list.map((m) => m.info.id));
      for (const id of present) if (!ids.has(id) && !gone.has(id)) gone.set(id, now);
      present = ids;
    });
  }
  for (let trial = 0; kind !== 'memory' && trial < CRASH_TRIALS; trial++) {
    // Crash: a member of another process owns its share, then dies without a word.
    remote = startCrashMember(kind, group, topic);
    await waitFor(stable, 30_000, 'stable with the crash member');
    await sleep(300 + Math.random() * 1_000);
    const owned = remote.assignment.map((id) => Number(id.split(':').pop()));
    const lastContact = remote.lastContactWall - performance.timeOrigin;
    const t0 = performance.now();
    remote.child.kill('SIGKILL');
    await remote.exited;
    const crashed = remote;
    remote = undefined;
    await waitFor(
      () => owned.every((p) => (tracker.last.get(p)?.at ?? 0) > t0),
      60_000,
      "the crashed member's partitions on a new owner",
    );
    const done = performance.now();
    crash.push(done - t0);
    const earliest = lastContact + SESSION_TIMEOUT_MS[kind];
    beyondExpiry.push(done - earliest);
    await waitFor(() => gone.has(crashed.memberId), 10_000, "the observer to see the crashed member's entry vanish");
    serverExpiry.push(gone.get(crashed.memberId) - earliest);
    handoff.push(done - gone.get(crashed.memberId));
    await waitFor(stable, 30_000, 'stable after the crash');
    process.stderr.write(
      `  ${kind} crash ${trial + 1}: ${crash.at(-1).toFixed(0)} ms after SIGKILL, ${beyondExpiry.at(-1).toFixed(0)} ms after the earliest expiry ` +
        `(server ended the session ${serverExpiry.at(-1).toFixed(0)} ms after it, kiel's handoff ${handoff.at(-1).toFixed(0)} ms) (${crashed.name})\n`,
    );
  }
  await observer?.close();
  await Promise.all(members.map((m) => m.consumer.close()));
  await stopProducer();
  return { leave, join, leaveWrites, leaveMoved, joinWrites, joinMoved, crash, beyondExpiry, serverExpiry, handoff };
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
  for (const kind of backends) rows.push([`kiel (${kind})`, await benchKiel(kind), TRIALS, kind]);
  // --kafkajs-trials 0: no kafkajs group (and no row for it).
  const kielRows = rows.length;
  if (KAFKAJS_TRIALS > 0) rows.push(['kafkajs group', await benchKafkajs(), KAFKAJS_TRIALS]);
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
  console.log(`\nkiel strategy: ${STRATEGY}`);
  console.log('\nbackend writes per rebalance (join, leave, writeRecord, claim, release), median over the trials');
  console.log('consumer           leave writes   moved    join writes   moved');
  for (const [name, r] of rows.slice(0, kielRows)) {
    const f = (x) => String(percentile(x, 50)).padStart(7);
    console.log(
      `${name.padEnd(18)} ${f(r.leaveWrites)}     ${f(r.leaveMoved)}    ${f(r.joinWrites)}    ${f(r.joinMoved)}`,
    );
  }
  const crashRows = rows.slice(0, kielRows).filter(([, r]) => r.crash.length > 0);
  if (crashRows.length > 0) {
    console.log(
      '\ncrash detection, ms (SIGKILL of a member process, until every partition it owned delivers on a new owner)',
    );
    console.log(
      'consumer           trials   timeout   after kill p50   p99   minus timeout p50   p99   beyond the earliest expiry p50   p99' +
        '   server expiry lag p50   p99   kiel handoff p50   p99',
    );
    for (const [name, r, , kind] of crashRows) {
      const f = (x, w) => x.toFixed(0).padStart(w);
      const timeout = SESSION_TIMEOUT_MS[kind];
      const overhead = r.crash.map((x) => x - timeout);
      console.log(
        `${name.padEnd(18)} ${String(r.crash.length).padStart(6)}  ${String(timeout).padStart(8)}  ${f(percentile(r.crash, 50), 15)} ${f(percentile(r.crash, 99), 5)}` +
          `  ${f(percentile(overhead, 50), 18)} ${f(percentile(overhead, 99), 5)}  ${f(percentile(r.beyondExpiry, 50), 30)} ${f(percentile(r.beyondExpiry, 99), 5)}` +
          `  ${f(percentile(r.serverExpiry, 50), 22)} ${f(percentile(r.serverExpiry, 99), 5)}  ${f(percentile(r.handoff, 50), 17)} ${f(percentile(r.handoff, 99), 5)}`,
      );
    }
    console.log(
      '(the earliest expiry: the last renewal the member sent + the timeout; server expiry lag: from then until the ' +
        'server ended the session, seen as its member entry vanishing; kiel handoff: from then until every partition delivered)',
    );
  }
  const peer = rows[kielRows]?.[1];
  for (const [name, r] of peer ? rows.slice(0, kielRows) : []) {
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
