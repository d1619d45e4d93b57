// Members of one bench:scale group in one child process (forked with IPC by scale.js). Several members per process:
// each has its own backend session and Kafka connections, as separate processes would.
//   parent → worker: {cmd: 'start', name} | {cmd: 'stop', name} | {cmd: 'counters', req} | {cmd: 'exit'}
//   worker → parent: {type: 'started', name, memberId} | {type: 'stopped', name}
//                    {type: 'rebalance', name, memberId, generation, at} after each rebalance a member applied
//                    {type: 'delivered', name, partition, at} for each batch handed to a member
//                    {type: 'event', name, event, memberId, detail, at} for lost, rejoined, fenced, unfenced, error
//                    {type: 'counters', req, writes, bytes, events, rss, members, compute} (compute: strategy ms since
//                    the last counters request)
//                    {type: 'trace', name, direction, partition, phase, claimWaitMs, at} with --trace: each partition's
//                    handoff (start, end) from the kiel:consumer:handoff channel
//                    {type: 'call', name, method, started, ended, partition} with --trace: each backend connect, join and write
// Usage (by scale.js): node scale-worker.js <zk|etcd> <brokers> <group> <topic> <strategy>
'use strict';

const { strategies } = require('@kiel/allocators');
const { GroupedConsumer } = require('../dist');
const { instrument, makeBackend } = require('./backends');

const [kind, brokers, group, topic, strategyName] = process.argv.slice(2);
const now = () => performance.timeOrigin + performance.now();
const send = (message) => process.send(message);
const counters = { writes: 0, bytes: 0, events: 0 };
let compute = [];
/** The named strategy, timed: the leader's compute time. */
const timed = Object.defineProperty(
  (members, partitions, context) => {
    const t = performance.now();
    try {
      return strategies[strategyName](members, partitions, context);
    } finally {
      compute.push(performance.now() - t);
    }
  },
  'name',
  { value: strategyName },
);
const members = new Map();
let profiler;
/** consumer instance → member name, for the tracing channel (which tells consumers apart by instance). */
const nameOf = new WeakMap();
const tracing = process.env.BENCH_SCALE_TRACE === '1';
/** With --trace, how late this process's event loop ran (a busy process delays every member in it), since the last counters request. */
const loopDelay = tracing ? require('node:perf_hooks').monitorEventLoopDelay({ resolution: 5 }) : undefined;
loopDelay?.enable();
if (tracing) {
  const { tracingChannel } = require('node:diagnostics_channel');
  const { channels } = require('../dist');
  const trace = (phase) => (context) => {
    const name = nameOf.get(context.consumer);
    if (name === undefined) return;
    send({
      type: 'trace',
      name,
      direction: context.direction,
      partition: `${context.topic}:${context.partition}`,
      phase,
      claimWaitMs: context.result?.claimWaitMs,
      outcome: context.result?.outcome,
      at: now(),
    });
  };
  tracingChannel(channels.handoff).subscribe({
    start: trace('start'),
    end: () => undefined,
    asyncStart: () => undefined,
    asyncEnd: trace('end'),
    error: () => undefined,
  });
}
// The bench went away: so do its members' sessions.
process.on('disconnect', () => process.exit(0));

/** Starts a member; a connect that fails (a busy machine's timeouts) is tried again, as an application would. */
async function start(name) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(name);
    } catch (error) {
      if (attempt >= 5) throw error;
      process.stderr.write(`scale-worker: ${name} failed to connect (${error.message}); trying again\n`);
      await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
    }
  }
}

async function startOnce(name) {
  const consumer = new GroupedConsumer({
    brokers: brokers.split(','),
    group,
    topics: [topic],
    backend: instrument(
      makeBackend(kind),
      counters,
      tracing
        ? (method, started, ended, partition) => send({ type: 'call', name, method, started, ended, partition })
        : undefined,
    ),
    strategy: timed,
    initialRebalanceDelay: Number(process.env.BENCH_SCALE_INITIAL_DELAY ?? 0),
    deserializer: 'raw',
    maxWaitTime: 500,
    offsetReset: 'latest',
  });
  nameOf.set(consumer, name);
  consumer.on('rebalance', ({ generation }) =>
    send({ type: 'rebalance', name, memberId: consumer.memberId, generation, at: now() }),
  );
  // A member that loses its session rejoins under a new id: the bench must follow it, and say so.
  for (const event of ['lost', 'rejoined', 'fenced', 'unfenced']) {
    consumer.on(event, (info) =>
      send({ type: 'event', name, event, memberId: consumer.memberId, detail: info?.reason, at: now() }),
    );
  }
  consumer.on('error', (error) =>
    send({ type: 'event', name, event: 'error', detail: `${error.code ?? ''} ${error.message}`.trim(), at: now() }),
  );
  await consumer.connect();
  const running = consumer.run({
    eachBatch: async (batch) => send({ type: 'delivered', name, partition: `${topic}:${batch.partition}`, at: now() }),
  });
  members.set(name, { consumer, running });
  send({ type: 'started', name, memberId: consumer.memberId });
}

async function stop(name) {
  const member = members.get(name);
  members.delete(name);
  await member.consumer.close();
  await member.running.catch(() => undefined);
  send({ type: 'stopped', name });
}

process.on('message', (message) => {
  const fail = (error) => {
    process.stderr.write(`scale-worker: ${error.stack}\n`);
    process.exit(1);
  };
  if (message.cmd === 'start') start(message.name).catch(fail);
  else if (message.cmd === 'stop') stop(message.name).catch(fail);
  else if (message.cmd === 'counters') {
    send({
      type: 'counters',
      req: message.req,
      ...counters,
      rss: process.memoryUsage().rss,
      members: members.size,
      compute,
      loopDelayMaxMs: loopDelay ? loopDelay.max / 1e6 : undefined,
      loopDelayP99Ms: loopDelay ? loopDelay.percentile(99) / 1e6 : undefined,
    });
    compute = [];
    loopDelay?.reset();
  } else if (message.cmd === 'profile') {
    // BENCH_SCALE_PROFILE=<dir>: a CPU profile of the trials alone (the start's storm left out), for a person to read.
    const inspector = require('node:inspector');
    if (message.on) {
      profiler = new inspector.Session();
      profiler.connect();
      profiler.post('Profiler.enable', () => profiler.post('Profiler.start'));
    } else if (profiler) {
      profiler.post('Profiler.stop', (error, result) => {
        if (!error) {
          const file = require('node:path').join(process.env.BENCH_SCALE_PROFILE, `worker-${process.pid}.cpuprofile`);
          require('node:fs').writeFileSync(file, JSON.stringify(result.profile));
        }
        profiler.disconnect();
        profiler = undefined;
      });
    }
  } else if (message.cmd === 'exit') {
    Promise.all([...members.keys()].map(stop)).then(() => process.exit(0), fail);
  }
});
