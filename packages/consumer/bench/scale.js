// npm run bench:scale — what a group costs as it grows: members × partitions × backend × strategy, with a kafkajs
// group of the same size in the same run.
//
// For each configuration the members run in child processes (scale-worker.js, --per-process members each) and the
// bench watches the allocation record itself (an observer session that is not a member). Nothing is produced while
// the group is steady; during a trial the bench produces to the partitions that change owner, every few ms from the
// moment it sees the record that moves them, until each has delivered a message to its new owner:
//   leave: a member that does not lead closes gracefully; until every partition that changed owner flows again.
//   join:  a new member starts in a worker (connect included); the same.
//   crash: a member in its own process (crash-member.js) is SIGKILLed; the same, so the session timeout (lease TTL)
//          is in it; `- timeout` subtracts it.
// Partitions that keep their owner never stop (kiel hands off per partition). Per rebalance it also counts backend
// writes (join, leave, writeRecord, claim, release) and the bytes written, watch events delivered to the members,
// the allocation record's size, RSS per member (the workers' RSS over the members), and the leader's compute time
// (the strategy, timed in the leader, plus encoding the record, timed here).
// The kafkajs group (same members, same partitions, same topic, in this process) is timed the same way, except that
// its eager protocol stops every partition, so its trials produce to all of them.
//
// Usage: node packages/consumer/bench/scale.js [--backend zk,etcd] [--strategy naive,sticky] [--members 2,8,32,64]
//   [--partitions 12,240,1200,3000] [--trials 5] [--crash-trials 2] [--kafkajs-trials 3] [--per-process 16] [--trace]
//   [--initial-delay MS] (every member's initialRebalanceDelay; the start's time, generations, writes and events print)
// --trace prints where each leave's and join's time went (record published, revokes, claims and their round trips,
// first deliveries, each worker's event loop delay). BENCH_SCALE_PROFILE=<dir> writes a CPU profile of each worker
// over the trials; BENCH_SCALE_WORKER_ARGS passes Node flags to the workers.
// Needs the local stack and built packages (npm run build).
'use strict';

const { fork, spawn } = require('node:child_process');
const path = require('node:path');
const { Kafka, logLevel } = require('kafkajs');
const { formatAllocation, parseAllocation } = require('../dist');
const { makeBackend, SESSION_TIMEOUT_MS } = require('./backends');

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
const list = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return (i > 0 ? process.argv[i + 1] : fallback).split(',').filter(Boolean);
};
const num = (name, fallback) => Number(list(name, String(fallback))[0]);
const BACKENDS = list('backend', 'zk,etcd');
const STRATEGIES = list('strategy', 'naive,sticky');
const MEMBERS = list('members', '2,8,32,64').map(Number);
const PARTITIONS = list('partitions', '12,240,1200,3000').map(Number);
const TRIALS = num('trials', 5);
const CRASH_TRIALS = num('crash-trials', 2);
const KAFKAJS_TRIALS = num('kafkajs-trials', 3);
const PER_PROCESS = num('per-process', 16);
/** --trace: print where each leave's and join's time went (record published, revokes, claims, first delivery). */
const TRACE = process.argv.includes('--trace');
/** --initial-delay MS: every member's initialRebalanceDelay (the leader's is in force). Default 0. */
const INITIAL_DELAY = num('initial-delay', 0);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.timeOrigin + performance.now();
const log = (line) => process.stderr.write(`${line}\n`);
const kafka = new Kafka({ clientId: 'bench-scale', brokers, logLevel: logLevel.NOTHING });

function percentile(xs, p) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

async function waitFor(condition, timeoutMs, what, group) {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (group?.failed) throw group.failed;
    if (performance.now() > deadline) throw new Error(`timed out: ${what}${group ? `: ${group.describe()}` : ''}`);
    await sleep(2);
  }
}

async function createTopic(partitions) {
  const topic = `bench-scale-${partitions}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: false, timeout: 120_000 });
  // kafkajs's waitForLeaders gives up on UNKNOWN_TOPIC_OR_PARTITION, which a broker still deleting a large topic of
  // an earlier run answers for a while: poll the metadata instead.
  const deadline = performance.now() + 120_000;
  for (;;) {
    const ready = await admin
      .fetchTopicMetadata({ topics: [topic] })
      .then(
        ({ topics }) => topics[0].partitions.length === partitions && topics[0].partitions.every((p) => p.leader >= 0),
      )
      .catch(() => false);
    if (ready) break;
    if (performance.now() > deadline) throw new Error(`topic ${topic} has no leader for every partition after 120 s`);
    await sleep(500);
  }
  await admin.disconnect();
  return topic;
}

/**
 * Produces one message to each partition of `pending()` every `intervalMs` until `pending()` is empty or stop() is
 * called. Returns stop().
 */
function pulse(producer, topic, pending, intervalMs) {
  let running = true;
  const loop = (async () => {
    while (running) {
      const partitions = pending();
      if (partitions.length === 0) {
        await sleep(2);
        continue;
      }
      await producer.send({
        topic,
        acks: 1,
        messages: partitions.map((id) => ({ partition: Number(id.slice(id.lastIndexOf(':') + 1)), value: '1' })),
      });
      await sleep(intervalMs(partitions.length));
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}
const pulseInterval = (n) => Math.max(10, Math.ceil(n / 100));

/** partition → owner, from an allocation record. */
function ownersOf(record) {
  const owners = new Map();
  for (const [member, topics] of Object.entries(record.assignment)) {
    for (const [topic, ids] of Object.entries(topics)) for (const id of ids) owners.set(`${topic}:${id}`, member);
  }
  return owners;
}

/** The partitions whose owner differs between two owner maps (lost or gained one included). */
function movedBetween(before, after) {
  const moved = [];
  for (const id of new Set([...before.keys(), ...after.keys()])) if (before.get(id) !== after.get(id)) moved.push(id);
  return moved;
}

/** One group under test: its workers, the observer of its allocation record, and what the members reported. */
class Group {
  constructor(kind, strategy, topic, partitions) {
    Object.assign(this, { kind, strategy, topic, partitions });
    this.name = `bench-scale-${kind}-${Date.now()}-${Math.random().toString(36).slice(2, 6)}`;
    this.workers = [];
    /** name → { memberId, worker, generation } */
    this.members = new Map();
    this.byMemberId = new Map();
    /** `partition|member name` → when that member first delivered a batch of that partition after settleT0. */
    this.firstDelivery = undefined;
    this.settleT0 = Infinity;
    this.record = undefined;
    this.recordBytes = 0;
    this.nextName = 0;
    this.requests = new Map();
    this.nextRequest = 0;
    /** lost, rejoined, fenced, unfenced, error → how many the members reported. */
    this.events = new Map();
    /** With --trace: the members' handoff steps, and when the observer saw each record generation. */
    this.traces = [];
    this.recordAt = new Map();
  }

  async open(workerCount) {
    this.observer = makeBackend(this.kind);
    await this.observer.connect();
    this.unwatch = this.observer.watchRecord(this.name, 'allocation', (stored) => {
      if (!stored) return;
      const record = parseAllocation(stored.value, stored.location);
      if (this.record && record.generation <= this.record.generation) return;
      this.record = record;
      this.recordAt.set(record.generation, now());
      this.recordBytes = Buffer.byteLength(stored.value);
      this.owners = ownersOf(record);
      this.onRecord?.();
    });
    for (let i = 0; i < workerCount; i++) {
      const worker = fork(
        path.join(__dirname, 'scale-worker.js'),
        [this.kind, brokers.join(','), this.name, this.topic, this.strategy],
        {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          env: {
            ...process.env,
            BENCH_SCALE_TRACE: TRACE ? '1' : '0',
            BENCH_SCALE_INITIAL_DELAY: String(INITIAL_DELAY),
          },
          // e.g. BENCH_SCALE_WORKER_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' to profile the members' processes.
          execArgv: (process.env.BENCH_SCALE_WORKER_ARGS ?? '').split(' ').filter(Boolean),
        },
      );
      worker.on('message', (m) => this.onMessage(worker, m));
      // A worker that dies (a client library that throws on its socket) ends this configuration, not the bench.
      worker.on('error', () => undefined);
      worker.exited = new Promise((resolve) => worker.on('exit', resolve));
      worker.on('exit', (code) => {
        if (!this.closing) this.failed = new Error(`a worker of ${this.name} exited with code ${code}`);
      });
      worker.count = 0;
      this.workers.push(worker);
    }
  }

  onMessage(worker, m) {
    if (m.type === 'delivered') {
      const key = `${m.partition}|${m.name}`;
      if (this.firstDelivery && m.at > this.settleT0 && !this.firstDelivery.has(key)) this.firstDelivery.set(key, m.at);
    } else if (m.type === 'trace' || m.type === 'call') this.traces.push(m);
    else if (m.type === 'rebalance') {
      const member = this.members.get(m.name);
      if (member) member.generation = Math.max(member.generation, m.generation);
    } else if (m.type === 'event') {
      // Rare at these sizes on a quiet machine, and worth knowing when they happen: counted and printed.
      this.events.set(m.event, (this.events.get(m.event) ?? 0) + 1);
      if (m.event !== 'error' || this.events.get('error') <= 5) {
        log(`  ${this.kind} ${this.name}: ${m.name} ${m.event}${m.detail ? ` (${m.detail})` : ''}`);
      }
      const member = this.members.get(m.name);
      if (m.event === 'rejoined' && member) {
        // Joined again as a new member: that id is the one the records list from now on.
        this.byMemberId.delete(member.memberId);
        member.memberId = m.memberId;
        member.generation = -1;
        this.byMemberId.set(m.memberId, m.name);
      }
    } else if (m.type === 'started') {
      const member = this.members.get(m.name);
      member.memberId = m.memberId;
      this.byMemberId.set(m.memberId, m.name);
      member.started();
    } else if (m.type === 'stopped') this.members.get(m.name)?.stopped?.();
    else if (m.type === 'counters') this.requests.get(m.req)(m);
  }

  /** Starts a member on the least loaded worker; resolves once it has joined (connected). */
  start() {
    const worker = this.workers.reduce((a, b) => (b.count < a.count ? b : a));
    worker.count++;
    const name = `m${this.nextName++}`;
    const member = { name, worker, generation: -1 };
    const started = new Promise((resolve) => (member.started = resolve));
    this.members.set(name, member);
    worker.send({ cmd: 'start', name });
    return started.then(() => member);
  }

  stop(name) {
    const member = this.members.get(name);
    const stopped = new Promise((resolve) => (member.stopped = resolve));
    member.worker.send({ cmd: 'stop', name });
    return stopped.then(() => {
      member.worker.count--;
      this.members.delete(name);
    });
  }

  /** Every worker's counters, summed; compute times are concatenated (only the leader's worker has any). */
  async counters() {
    const replies = await Promise.all(
      this.workers.map((worker) => {
        const req = this.nextRequest++;
        return new Promise((resolve) => {
          this.requests.set(req, resolve);
          worker.send({ cmd: 'counters', req });
        });
      }),
    );
    return {
      writes: replies.reduce((n, r) => n + r.writes, 0),
      bytes: replies.reduce((n, r) => n + r.bytes, 0),
      events: replies.reduce((n, r) => n + r.events, 0),
      rss: replies.reduce((n, r) => n + r.rss, 0),
      compute: replies.flatMap((r) => r.compute),
      loopDelay: replies.map((r) => `${r.loopDelayMaxMs?.toFixed(0)}/${r.loopDelayP99Ms?.toFixed(0)}`).join(' '),
    };
  }

  /** The live member ids the bench expects: the workers' members and `extra` (a crash member). */
  expectedIds(extra = []) {
    return [...[...this.members.values()].map((m) => m.memberId), ...extra].sort();
  }

  /** What stands between the group and stable(), for a timeout's message. */
  describe() {
    const r = this.record;
    if (!r) return 'no allocation record published';
    const expected = this.expectedIds();
    const listed = new Set(r.members);
    const missing = expected.filter((id) => id === undefined || !listed.has(id));
    const extra = r.members.filter((id) => !expected.includes(id));
    const behind = [...this.members.values()].filter((m) => m.generation < r.generation);
    const generations = new Map();
    for (const m of behind) generations.set(m.generation, (generations.get(m.generation) ?? 0) + 1);
    return (
      `record generation ${r.generation} lists ${r.members.length} of ${expected.length} members ` +
      `(${missing.length} missing, ${extra.length} not expected); ${behind.length} members behind it ` +
      `(at generations ${[...generations].map(([g, n]) => `${g}: ${n}`).join(', ') || 'none'})`
    );
  }

  /** The published record covers exactly the expected members, and each of them applied it. */
  stable(extra = []) {
    const r = this.record;
    if (!r) return false;
    const expected = this.expectedIds(extra.map((e) => e.memberId));
    if (r.members.length !== expected.length || r.members.some((m, i) => m !== expected[i])) return false;
    return [...this.members.values(), ...extra].every((m) => m.generation >= r.generation);
  }

  async close() {
    this.closing = true;
    this.unwatch?.();
    await this.observer?.close();
    for (const worker of this.workers) worker.send({ cmd: 'exit' });
    await Promise.race([Promise.all(this.workers.map((w) => w.exited)), sleep(30_000)]);
    for (const worker of this.workers) worker.kill('SIGKILL');
  }
}

/**
 * Times one membership change: `act()` at t0, then until the published record lists exactly the expected members,
 * each of them applied it, and every partition whose owner changed has delivered a message to its new owner after t0
 * (the first such delivery counts). From the moment the observer sees a record that moves partitions, the bench
 * produces to those partitions every few ms, as a topic with traffic would have data waiting for the new owner.
 * Returns the time and what moved.
 */
async function settle(group, producer, act, extra = () => []) {
  const before = new Map(group.owners);
  const done = new Set();
  let moved = [];
  const newOwner = (id) => group.byMemberId.get(group.owners.get(id)) ?? group.owners.get(id);
  const pending = () => moved.filter((id) => !done.has(id));
  const generation0 = group.record.generation;
  group.onRecord = () => {
    if (group.record.generation > generation0) moved = movedBetween(before, group.owners);
  };
  const stopPulse = pulse(producer, group.topic, pending, pulseInterval);
  const t0 = now();
  group.traces = [];
  group.firstDelivery = new Map();
  group.settleT0 = t0;
  const deliveredAt = new Map();
  let stableAt;
  await act();
  let finished = 0;
  try {
    await waitFor(
      () => {
        if (!group.stable(extra())) return false;
        stableAt ??= now();
        moved = movedBetween(before, group.owners);
        for (const id of moved) {
          const first = group.firstDelivery.get(`${id}|${newOwner(id)}`);
          if (!done.has(id) && first !== undefined) {
            done.add(id);
            deliveredAt.set(id, first);
            finished = Math.max(finished, first);
          }
        }
        return pending().length === 0;
      },
      120_000,
      'the group to settle',
      group,
    );
  } finally {
    group.onRecord = undefined;
    await stopPulse();
  }
  if (TRACE) log(traceLine(group, t0, generation0, moved, deliveredAt, stableAt));
  return { ms: (moved.length === 0 ? now() : finished) - t0, moved: moved.length };
}

/** Where one settle()'s time went, from the members' handoff traces: ms after the act, min/p50/max over the moved. */
function traceLine(group, t0, generation0, moved, deliveredAt, stableAt) {
  const ms = (at) => at - t0;
  const span = (xs) => {
    if (xs.length === 0) return '-';
    const f = (x) => x.toFixed(0);
    return `${f(Math.min(...xs))}/${f(percentile(xs, 50))}/${f(Math.max(...xs))}`;
  };
  const movedSet = new Set(moved);
  const of = (direction, phase) =>
    group.traces.filter((t) => t.direction === direction && t.phase === phase && movedSet.has(t.partition));
  const published = [...group.recordAt].filter(([g]) => g > generation0).map(([, at]) => ms(at));
  const assignEnds = of('assign', 'end').filter((t) => t.outcome === 'done');
  const calls = (method) => group.traces.filter((t) => t.type === 'call' && t.method === method);
  const call = (method) => {
    const xs = calls(method);
    return xs.length === 0
      ? ''
      : `${method} ${span(xs.map((t) => ms(t.started)))}→${span(xs.map((t) => ms(t.ended)))}; `;
  };
  return (
    `    trace (ms after the act, min/p50/max over ${moved.length} moved): record published ` +
    `${published.length ? published.map((x) => x.toFixed(0)).join(',') : '-'}; ${call('connect')}${call('join')}` +
    `${call('leave')}${call('writeRecord')}revoke start ` +
    `${span(of('revoke', 'start').map((t) => ms(t.at)))}, end ${span(of('revoke', 'end').map((t) => ms(t.at)))}; ` +
    `assign start ${span(of('assign', 'start').map((t) => ms(t.at)))}, claim ` +
    `${span(
      calls('claim')
        .filter((t) => movedSet.has(t.partition))
        .map((t) => t.ended - t.started),
    )} ms, claim wait ` +
    `${span(assignEnds.map((t) => t.claimWaitMs ?? 0))}, end ${span(assignEnds.map((t) => ms(t.at)))}; ` +
    `first delivery ${span([...deliveredAt.values()].map(ms))}; every member applied ${stableAt ? ms(stableAt).toFixed(0) : '-'}`
  );
}

/** A member in its own process (crash-member.js), following what it reports on stdout. */
function startCrashMember(group) {
  const child = spawn(
    process.execPath,
    [path.join(__dirname, 'crash-member.js'), group.kind, brokers.join(','), group.name, group.topic, group.strategy],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const state = { child, name: `crash-${child.pid}`, generation: -1 };
  state.exited = new Promise((resolve) => child.on('close', resolve));
  let pending = '';
  child.stdout.on('data', (chunk) => {
    const lines = (pending + chunk.toString()).split('\n');
    pending = lines.pop();
    for (const line of lines) {
      const [what, a] = line.split(' ');
      if (what === 'ASSIGNED') state.generation = Number(a);
      else if (what === 'ID') {
        state.memberId = a;
        group.byMemberId.set(a, state.name);
      }
    }
  });
  return state;
}

async function benchKiel(kind, strategy, members, partitions, topic, producer) {
  const group = new Group(kind, strategy, topic, partitions);
  const processes = Math.ceil(members / PER_PROCESS);
  const result = { leave: [], join: [], crash: [], leaveWrites: [], joinWrites: [], leaveBytes: [], joinBytes: [] };
  Object.assign(result, { leaveEvents: [], joinEvents: [], leaveMoved: [], joinMoved: [], compute: [], processes });
  try {
    await group.open(processes);
    const t = performance.now();
    // Eight at a time: a whole group connecting at once is a thundering herd no deployment starts with.
    for (let i = 0; i < members; i += 8) {
      await Promise.all(Array.from({ length: Math.min(8, members - i) }, () => group.start()));
    }
    await waitFor(() => group.stable(), 300_000, 'the initial allocation', group);
    result.startMs = performance.now() - t;
    await sleep(500);
    const steady = await group.counters();
    // Every write and generation so far belongs to the start (the counters begin at zero).
    result.start = {
      ms: result.startMs,
      generations: group.record.generation,
      writes: steady.writes,
      events: Object.fromEntries(group.events),
    };
    result.rssPerMember = steady.rss / members;
    const measure = async (what, act) => {
      const before = await group.counters();
      const { ms, moved } = await settle(group, producer, act);
      await sleep(200);
      const after = await group.counters();
      result[what].push(ms);
      result[`${what}Writes`].push(after.writes - before.writes);
      result[`${what}Bytes`].push(after.bytes - before.bytes);
      result[`${what}Events`].push(after.events - before.events);
      result[`${what}Moved`].push(moved);
      if (TRACE) log(`    ${what}: worker event loop delay max/p99 ms since the last trial: ${after.loopDelay}`);
      const t = performance.now();
      formatAllocation(group.record);
      const encode = performance.now() - t;
      result.compute.push(...after.compute.map((c) => c + encode));
      return { ms, moved, writes: after.writes - before.writes };
    };
    const profiling = process.env.BENCH_SCALE_PROFILE !== undefined;
    if (profiling) for (const worker of group.workers) worker.send({ cmd: 'profile', on: true });
    for (let trial = 0; trial < TRIALS; trial++) {
      const leader = group.byMemberId.get(group.record.leader);
      const candidates = [...group.members.keys()].filter((n) => n !== leader);
      const leaving = candidates[Math.floor(Math.random() * candidates.length)];
      const l = await measure('leave', () => group.stop(leaving));
      const j = await measure('join', () => group.start());
      log(
        `  ${kind} ${strategy} ${members}×${partitions} trial ${trial + 1}: leave ${l.ms.toFixed(0)} ms (${l.moved} moved, ` +
          `${l.writes} writes), join ${j.ms.toFixed(0)} ms (${j.moved} moved, ${j.writes} writes)`,
      );
    }
    if (profiling) {
      for (const worker of group.workers) worker.send({ cmd: 'profile', on: false });
      await sleep(2_000);
    }
    result.recordBytes = group.recordBytes;
    for (let trial = 0; trial < CRASH_TRIALS; trial++) {
      const remote = startCrashMember(group);
      try {
        await waitFor(() => remote.memberId !== undefined, 60_000, 'the crash member to join');
        await waitFor(() => group.stable([remote]), 120_000, 'stable with the crash member');
        await sleep(300 + Math.random() * 700);
        let dead = false;
        const { ms, moved } = await settle(
          group,
          producer,
          async () => {
            remote.child.kill('SIGKILL');
            await remote.exited;
            dead = true;
          },
          () => (dead ? [] : [remote]),
        );
        result.crash.push(ms);
        log(`  ${kind} ${strategy} ${members}×${partitions} crash ${trial + 1}: ${ms.toFixed(0)} ms (${moved} moved)`);
      } finally {
        // A trial that failed leaves no member process behind (it outlived the bench before).
        remote.child.kill('SIGKILL');
      }
    }
  } finally {
    result.events = Object.fromEntries(group.events);
    await group.close();
  }
  return result;
}

async function benchKafkajs(members, partitions, topic, producer) {
  const groupId = `bench-scale-kafkajs-${Date.now()}`;
  /** partition → when it first delivered after the current settleAll's t0, from a member that joined after t0. */
  let firstAfter = new Map();
  let since = Infinity;
  const consumers = [];
  let n = 0;
  const start = async () => {
    const name = `k${n++}`;
    const consumer = kafka.consumer({ groupId });
    const member = { name, consumer, partitions: [], joinedAt: 0 };
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      member.partitions = e.payload.memberAssignment[topic] ?? [];
      member.joinedAt = now();
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: false });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        // A batch of the generation before the change (the eager protocol has not stopped it yet) does not count.
        if (member.joinedAt > since && !firstAfter.has(batch.partition)) firstAfter.set(batch.partition, now());
      },
    });
    consumers.push(member);
    return member;
  };
  /** Every partition owned once, by members that all joined the current generation (after `after`). */
  const stable = (after = 0) => {
    if (consumers.some((m) => m.joinedAt <= after)) return false;
    const owned = consumers.flatMap((m) => m.partitions);
    return owned.length === partitions && new Set(owned).size === partitions;
  };
  const result = { leave: [], join: [] };
  const all = Array.from({ length: partitions }, (_, p) => p);
  /** Until every partition delivered after t0 (the eager protocol stops them all), producing to the rest. */
  const settleAll = async (act) => {
    const stopPulse = pulse(
      producer,
      topic,
      () => all.filter((p) => !firstAfter.has(p)).map((p) => `${topic}:${p}`),
      pulseInterval,
    );
    const t0 = now();
    firstAfter = new Map();
    since = t0;
    try {
      await act();
      await waitFor(() => stable(t0) && firstAfter.size === partitions, 300_000, 'the kafkajs group to settle');
    } finally {
      await stopPulse();
    }
    return Math.max(...firstAfter.values()) - t0;
  };
  try {
    // Eight at a time, as for kiel's members: one by one, each join is a rebalance of the whole group.
    for (let i = 0; i < members; i += 8) await Promise.all(Array.from({ length: Math.min(8, members - i) }, start));
    await waitFor(stable, 300_000, 'kafkajs initial assignment');
    for (let trial = 0; trial < KAFKAJS_TRIALS; trial++) {
      const leaving = consumers.splice(1 + Math.floor(Math.random() * (consumers.length - 1)), 1)[0];
      result.leave.push(await settleAll(() => leaving.consumer.disconnect()));
      result.join.push(await settleAll(() => start()));
      log(
        `  kafkajs ${members}×${partitions} trial ${trial + 1}: leave ${result.leave.at(-1).toFixed(0)} ms, ` +
          `join ${result.join.at(-1).toFixed(0)} ms`,
      );
    }
  } finally {
    await Promise.all(consumers.map((m) => m.consumer.disconnect().catch(() => undefined)));
  }
  return result;
}

function report(rows, peers, seconds) {
  const f = (x, w = 7) => (Number.isFinite(x) ? x.toFixed(0) : '-').padStart(w);
  const p = (xs, w) => `${f(percentile(xs, 50), w)}${f(percentile(xs, 99), w)}`;
  console.log(
    `\nbench:scale: time until every partition that changed owner flows again, ms (p50 p99); per rebalance, median: ` +
      `partitions moved, backend writes, bytes written, watch events; record bytes; RSS per member (MiB); leader ms`,
  );
  console.log(
    'backend strategy members partitions procs |   leave p50    p99 |    join p50    p99 |   crash p50    p99 | ' +
      'moved L/J  writes L/J    bytes L/J  events L/J |  record  RSS/m leader',
  );
  for (const r of rows) {
    const m = (xs) => f(percentile(xs, 50), 5);
    console.log(
      `${r.kind.padEnd(7)} ${r.strategy.padEnd(8)} ${String(r.members).padStart(7)} ${String(r.partitions).padStart(10)} ` +
        `${String(r.processes).padStart(5)} |     ${p(r.leave)} |     ${p(r.join)} |     ${p(r.crash)} | ` +
        `${m(r.leaveMoved)}/${m(r.joinMoved).trim().padEnd(4)} ${m(r.leaveWrites)}/${m(r.joinWrites).trim().padEnd(5)} ` +
        `${f(percentile(r.leaveBytes, 50), 6)}/${f(percentile(r.joinBytes, 50), 6).trim().padEnd(6)} ` +
        `${m(r.leaveEvents)}/${m(r.joinEvents).trim().padEnd(5)}| ${f(r.recordBytes, 7)} ${(r.rssPerMember / 2 ** 20).toFixed(1).padStart(6)} ` +
        `${percentile(r.compute, 50)?.toFixed(1).padStart(6)}`,
    );
  }
  const starts = rows.filter((r) => r.start);
  if (starts.length > 0) {
    console.log(
      `\nthe start: every member started (eight at a time) until the group is stable; initialRebalanceDelay ${INITIAL_DELAY} ms`,
    );
    for (const r of starts) {
      const events = Object.entries(r.start.events).map(([e, n]) => `${e} ${n}`);
      console.log(
        `${r.kind} ${r.strategy} ${r.members}×${r.partitions}: ${(r.start.ms / 1000).toFixed(1)} s, ` +
          `${r.start.generations} generations, ${r.start.writes} backend writes` +
          `${events.length > 0 ? `; ${events.join(', ')}` : ''}`,
      );
    }
  }
  const eventful = rows.filter((r) => Object.keys(r.events ?? {}).length > 0);
  if (eventful.length > 0) {
    console.log('\nmember events during a configuration (a lost session rejoins under a new id)');
    for (const r of eventful) {
      const events = Object.entries(r.events).map(([e, n]) => `${e} ${n}`);
      console.log(`${r.kind} ${r.strategy} ${r.members}×${r.partitions}: ${events.join(', ')}`);
    }
  }
  if (peers.length > 0) {
    console.log('\nkafkajs group (eager protocol: every partition stops), same topic, same run, ms (p50 p99)');
    console.log('members partitions |   leave p50    p99 |    join p50    p99');
    for (const r of peers) {
      console.log(
        `${String(r.members).padStart(7)} ${String(r.partitions).padStart(10)} |     ${p(r.leave)} |     ${p(r.join)}`,
      );
    }
  }
  console.log(
    `\ncrash includes the session timeout (ZooKeeper ${SESSION_TIMEOUT_MS.zk} ms, etcd lease ${SESSION_TIMEOUT_MS.etcd} ms). ` +
      `Trials: ${TRIALS} leave/join, ${CRASH_TRIALS} crash, ${KAFKAJS_TRIALS} kafkajs; ${PER_PROCESS} members per process. ` +
      `Took ${seconds.toFixed(0)} s.`,
  );
}

async function main() {
  const started = performance.now();
  const producer = kafka.producer();
  await producer.connect();
  const rows = [];
  const peers = [];
  const failures = [];
  const created = [];
  try {
    for (const partitions of PARTITIONS) {
      const topic = await createTopic(partitions);
      created.push(topic);
      for (const members of MEMBERS) {
        for (const kind of BACKENDS) {
          for (const strategy of STRATEGIES) {
            try {
              const r = await benchKiel(kind, strategy, members, partitions, topic, producer);
              rows.push({ kind, strategy, members, partitions, ...r });
            } catch (error) {
              log(`  ${kind} ${strategy} ${members}×${partitions} failed: ${error.message}`);
              failures.push(`${kind} ${strategy} ${members}×${partitions}: ${error.message}`);
            }
          }
        }
        if (KAFKAJS_TRIALS > 0)
          peers.push({ members, partitions, ...(await benchKafkajs(members, partitions, topic, producer)) });
      }
    }
  } finally {
    await producer.disconnect();
    // Thousands of partitions per run: a broker keeps files open for each, and runs add up.
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: created }).catch((error) => log(`deleting ${created}: ${error.message}`));
    await admin.disconnect();
  }
  report(rows, peers, (performance.now() - started) / 1000);
  for (const failure of failures) console.log(`failed: ${failure}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
