// metrics() and the kiel:consumer:* tracing channels against real Kafka (MemoryBackend for the group): lag from the
// high watermark a Fetch answer carries, consumed totals, fetch/commit/rebalance/handoff figures, fencing time, and
// the context objects each channel publishes.
import diagnosticsChannel from 'node:diagnostics_channel';
import {
  GroupedConsumer,
  MemoryBackend,
  MemoryStore,
  SingleConsumer,
  channels,
  isKielError,
  type CommitTraceContext,
  type FenceTraceContext,
  type FetchTraceContext,
  type HandlerTraceContext,
  type HandoffTraceContext,
  type MessageTraceContext,
  type PartitionMetrics,
  type RebalanceTraceContext,
} from '../src';
import { kafka, KAFKA_BROKERS, produce, sleep, topics, uniqueName, waitFor } from '@kiel/test-kit';

const t = topics();
afterAll(() => t.cleanup());

/** Records every event of every kiel channel while subscribed. */
function recordChannels() {
  const seen: Array<{ channel: string; event: string; context: Record<string, unknown> }> = [];
  const unsubscribes: Array<() => void> = [];
  for (const name of Object.values(channels)) {
    const tc = diagnosticsChannel.tracingChannel(name);
    const handlers = Object.fromEntries(
      (['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const).map((event) => [
        event,
        (context: unknown) => seen.push({ channel: name, event, context: context as Record<string, unknown> }),
      ]),
    ) as unknown as Parameters<typeof tc.subscribe>[0];
    tc.subscribe(handlers);
    unsubscribes.push(() => tc.unsubscribe(handlers));
  }
  return {
    seen,
    ended<C>(channel: string, consumer?: object): C[] {
      return seen
        .filter((s) => s.channel === channel && s.event === 'asyncEnd')
        .filter((s) => consumer === undefined || s.context.consumer === consumer)
        .map((s) => s.context as C);
    },
    stop: () => unsubscribes.forEach((u) => u()),
  };
}

const byPartition = (ps: readonly PartitionMetrics[], p: number) => ps.find((x) => x.partition === p)!;

test('SingleConsumer.metrics(): records-lag from the fetched high watermark, consumed totals, fetch figures', async () => {
  const topic = await t.create('kiel-metrics', 3);
  const planned = [120, 60, 30];
  const value = 'v'.repeat(200);
  // Ten records per send: many record batches, so a small fetch brings only part of a partition.
  const producer = kafka.producer();
  await producer.connect();
  for (let i = 0; i < Math.max(...planned); i += 10) {
    const messages = planned.flatMap((n, partition) =>
      Array.from({ length: Math.max(0, Math.min(10, n - i)) }, (_, j) => ({ partition, value: `${i + j}:${value}` })),
    );
    await producer.send({ topic, acks: -1, messages });
  }
  await producer.disconnect();
  // What the log holds, from the broker: kafkajs's producer is not idempotent, so a send it retried after a timeout
  // can be in the log twice. The figures under test are checked against the log, not against what was planned.
  const admin = kafka.admin();
  await admin.connect();
  const counts = (await admin.fetchTopicOffsets(topic))
    .sort((x, y) => x.partition - y.partition)
    .map((o) => Number(o.high));
  await admin.disconnect();
  expect(counts.map((n, i) => n >= planned[i]!)).toEqual([true, true, true]);
  const consumer = new SingleConsumer<Buffer>({
    brokers: KAFKA_BROKERS,
    topics: [topic],
    from: 'beginning',
    deserializer: 'raw',
    maxWaitTime: 100,
    // Small fetches: the first batch leaves most of each partition behind, so the lag is visible mid-way.
    maxPartitionBytes: 2048,
    metricsWindow: { sampleMs: 1000, samples: 2 },
  });
  const early: PartitionMetrics[] = [];
  let handled = 0;
  let firstBatchMessages = 0;
  try {
    const total = counts.reduce((a, b) => a + b, 0);
    const before = consumer.metrics();
    expect(before['assigned-partitions']).toBe(0);
    expect(before['records-consumed-total']).toBe(0);
    expect(Number.isNaN(before['fetch-latency-avg'])).toBe(true);
    await consumer.run({
      eachBatch: async (batch) => {
        if (batch.partition === 0 && early.length === 0) {
          firstBatchMessages = batch.messages.length;
          early.push(byPartition(consumer.metrics().partitions, 0));
        }
        handled += batch.messages.length;
        if (handled >= total) void consumer.stop();
      },
    });
    // Mid-way on partition 0: the lag is the high watermark (all records produced) minus the position.
    const mid = early[0]!;
    expect(mid['high-watermark']).toBe(counts[0]);
    expect(mid.position).toBeGreaterThanOrEqual(firstBatchMessages);
    expect(mid['records-lag']).toBe(counts[0]! - mid.position);
    expect(mid['records-lag']).toBeGreaterThan(0);

    await waitFor('every position at its high watermark', () =>
      consumer.metrics().partitions.every((p) => p.position === counts[p.partition]),
    );
    const m = consumer.metrics();
    expect(m['assigned-partitions']).toBe(3);
    expect(m['records-consumed-total']).toBe(total);
    expect(m['bytes-consumed-total']).toBeGreaterThan(total * value.length);
    expect(m['records-consumed-rate']).toBeGreaterThan(0);
    expect(m['bytes-consumed-rate']).toBeGreaterThan(0);
    expect(m['fetch-total']).toBeGreaterThan(3);
    expect(m['fetch-latency-avg']).toBeGreaterThan(0);
    expect(m['fetch-latency-max']).toBeGreaterThanOrEqual(m['fetch-latency-avg']);
    expect(m['fetch-size-max']).toBeGreaterThan(0);
    expect(m.window).toEqual({ sampleMs: 1000, samples: 2 });
    for (const p of m.partitions) {
      expect(p['high-watermark']).toBe(counts[p.partition]);
      expect(p['records-lag']).toBe(0);
    }
    // The lag seen at partition 0's batches was above zero within the window.
    expect(byPartition(m.partitions, 0)['records-lag-max']).toBeGreaterThan(0);
    expect(m['records-lag-max']).toBeGreaterThanOrEqual(byPartition(m.partitions, 0)['records-lag-max']);

    // New records: the next fetch answer carries the new high watermark although nothing is handled yet.
    consumer.pause([{ topic, partition: 1 }]);
    await produce(topic, [
      { partition: 2, value: 'late-1' },
      { partition: 2, value: 'late-2' },
    ]);
    const m2 = await (async () => {
      // Nothing consumes: run() has stopped, but the fetch engine keeps fetching up to its buffer bound.
      await waitFor(
        'the new high watermark',
        () => byPartition(consumer.metrics().partitions, 2)['high-watermark'] === counts[2]! + 2,
      );
      return consumer.metrics();
    })();
    expect(byPartition(m2.partitions, 2)['records-lag']).toBe(2);
    expect(byPartition(m2.partitions, 1).paused).toBe(true);

    // Past the window, rates and averages fall back to nothing seen.
    await sleep(2100);
    const later = consumer.metrics();
    expect(later['records-consumed-rate']).toBe(0);
    expect(later['records-consumed-total']).toBe(total);
  } finally {
    await consumer.close();
  }
});

test('metricsWindow is checked', () => {
  const make = (metricsWindow: unknown) =>
    new SingleConsumer({ brokers: KAFKA_BROKERS, metricsWindow: metricsWindow as { sampleMs: number } });
  for (const bad of [{ sampleMs: 0 }, { sampleMs: 1.5 }, { samples: 0 }, { samples: 101 }, 'x']) {
    let error: unknown;
    try {
      make(bad);
    } catch (err) {
      error = err;
    }
    expect(isKielError(error) && error.code).toBe('ERR_INVALID_CONFIG');
  }
});

test('GroupedConsumer: group metrics and every tracing channel through a join, a handoff, a fence and a close', async () => {
  const topic = await t.create('kiel-trace', 4);
  await produce(
    topic,
    Array.from({ length: 80 }, (_, i) => ({ partition: i % 4, value: `m${i}`, headers: { traceparent: `tp-${i}` } })),
  );
  const store = new MemoryStore();
  const group = uniqueName('kiel-trace');
  const rec = recordChannels();
  const make = (clientId: string) =>
    new GroupedConsumer<string>({
      brokers: KAFKA_BROKERS,
      clientId,
      group,
      topics: [topic],
      backend: new MemoryBackend({ store, sessionTimeout: 3000 }),
      deserializer: 'string',
      maxWaitTime: 100,
      fencingTimeout: 1000,
      metricsWindow: { sampleMs: 10_000, samples: 2 },
    });
  const a = make('member-a');
  const b = make('member-b');
  const seenBy = new Map<string, Set<string>>([
    ['a', new Set()],
    ['b', new Set()],
  ]);
  const runA = a.run({
    eachMessage: async (m) => {
      seenBy.get('a')!.add(`${m.partition}:${m.offset}`);
    },
  });
  let runB: Promise<void> | undefined;
  try {
    await waitFor('a to handle all 80', () => seenBy.get('a')!.size === 80);
    await waitFor('a to commit all 4', () => a.metrics()['commit-total'] > 0 && a.assignment.length === 4);
    const ma = a.metrics();
    expect(ma.group).toBe(group);
    expect(ma['member-id']).toBe(a.memberId);
    expect(ma.leader).toBe(true);
    expect(ma['assigned-partitions']).toBe(4);
    expect(ma['rebalance-total']).toBeGreaterThanOrEqual(1);
    expect(ma['last-rebalance-seconds-ago']).toBeGreaterThanOrEqual(0);
    expect(ma['rebalance-latency-max']).toBeGreaterThan(0);
    expect(ma['commit-latency-avg']).toBeGreaterThan(0);
    expect(ma['backend-latency-avg']).toBeGreaterThanOrEqual(0);
    expect(ma['claim-wait-max']).toBe(0); // nobody held a claim before a
    expect(ma.partitions.map((p) => p['records-lag'])).toEqual([0, 0, 0, 0]);
    for (const p of ma.partitions) expect(p['last-handoff-ms']).toBeGreaterThan(0);
    expect(ma.fenced).toBe(false);
    expect(ma['fenced-time-total']).toBe(0);

    // b joins: a hands two partitions over (commit, release), b claims them.
    runB = b.run({
      eachMessage: async (m) => {
        seenBy.get('b')!.add(`${m.partition}:${m.offset}`);
      },
    });
    await waitFor('a and b to share the 4 partitions', () => a.assignment.length === 2 && b.assignment.length === 2);
    await waitFor('b to finish its two assignments', () => b.metrics()['partition-handoff-latency-max'] > 0);
    const mb = b.metrics();
    expect(mb['assigned-partitions']).toBe(2);
    expect(mb['partition-handoff-latency-max']).toBeGreaterThan(0);
    expect(mb['claim-wait-max']).toBeGreaterThanOrEqual(0);
    // No lag figure before the first fetch answer brings the high watermark; then none behind.
    await waitFor("b's first fetch answers on both its partitions", () => {
      const ps = b.metrics().partitions;
      return ps.length === 2 && ps.every((p) => p['high-watermark'] === 20);
    });
    expect(b.metrics().partitions.map((p) => p['records-lag'])).toEqual([0, 0]);

    // a loses contact with its backend past the fencing timeout (1 s), then gets it back well before its session
    // (3 s) could expire.
    store.cutOffSession((a as unknown as { backend: MemoryBackend }).backend.sessionId!);
    await waitFor('a to fence itself', () => a.metrics().fenced, 10_000);
    await sleep(200);
    store.restoreSession((a as unknown as { backend: MemoryBackend }).backend.sessionId!);
    await waitFor('a to lift its fence', () => !a.metrics().fenced, 10_000);
    const fenced = a.metrics();
    expect(fenced['fenced-total']).toBe(1);
    expect(fenced['fenced-time-total']).toBeGreaterThanOrEqual(150);

    await b.close();
    await runB;
    await a.close();
    await runA;
  } finally {
    rec.stop();
    await b.close();
    await a.close();
  }
  // Nothing handled twice by the two members (they handed over cleanly), and every message once.
  expect(new Set([...seenBy.get('a')!, ...seenBy.get('b')!]).size).toBe(80);

  // fetch: one context per Fetch request, with the consumer, the broker and what came back.
  const fetches = rec.ended<FetchTraceContext>(channels.fetch, a);
  expect(fetches.length).toBeGreaterThan(0);
  expect(fetches[0]!.group).toBe(group);
  expect(fetches[0]!.clientId).toBe('member-a');
  expect(typeof fetches[0]!.broker).toBe('number');
  expect(fetches.reduce((n, f) => n + (f.result?.records ?? 0), 0)).toBeGreaterThanOrEqual(80);
  expect(fetches.every((f) => f.partitions.every((p) => p.topic === topic))).toBe(true);

  // handler: one per batch of eachMessage, covering the batch; message: one per message, with its headers.
  const handlers = rec.ended<HandlerTraceContext>(channels.handler, a);
  expect(handlers.length).toBeGreaterThan(0);
  expect(handlers.every((h) => h.kind === 'eachMessage' && h.topic === topic)).toBe(true);
  expect(handlers.reduce((n, h) => n + h.batch.messages.length, 0)).toBeGreaterThanOrEqual(80);
  const messages = rec.ended<MessageTraceContext>(channels.message, a);
  expect(new Set(messages.map((m) => `${m.partition}:${m.offset}`)).size).toBe(80);
  const traceparent = messages[0]!.message.headers.find((h) => h.key === 'traceparent')?.value?.toString();
  expect(traceparent).toMatch(/^tp-\d+$/);
  // start, end, asyncStart, asyncEnd for each, on one context object.
  const first = messages[0]!;
  expect(rec.seen.filter((s) => s.context === (first as unknown)).map((s) => s.event)).toEqual([
    'start',
    'end',
    'asyncStart',
    'asyncEnd',
  ]);

  // commit: a's commits, the last of them its hand-back on close.
  const commits = rec.ended<CommitTraceContext>(channels.commit, a);
  expect(commits.length).toBeGreaterThan(0);
  expect(commits.some((c) => (c.result?.committed.length ?? 0) > 0)).toBe(true);

  // rebalance: a's first generation, the one where b joined, the one after b left, and its own hand-back.
  const rebalances = rec.ended<RebalanceTraceContext>(channels.rebalance, a);
  expect(rebalances.length).toBeGreaterThanOrEqual(3);
  expect(rebalances[0]!.result!.assigned.length).toBe(4);
  expect(rebalances.some((r) => r.result!.revoked.length === 2)).toBe(true);
  expect(rebalances.every((r) => r.memberId === a.memberId && r.result!.durationMs >= 0)).toBe(true);

  // handoff: per partition; b's assignments of the two partitions a revoked.
  const handoffsA = rec.ended<HandoffTraceContext>(channels.handoff, a);
  const handoffsB = rec.ended<HandoffTraceContext>(channels.handoff, b);
  const revokedByA = handoffsA.filter((h) => h.direction === 'revoke' && h.result?.outcome === 'done');
  const assignedToB = handoffsB.filter((h) => h.direction === 'assign' && h.result?.outcome === 'done');
  expect(assignedToB.length).toBe(2);
  for (const h of assignedToB) {
    expect(revokedByA.some((r) => r.partition === h.partition && r.generation === h.generation)).toBe(true);
  }

  // fence: one stretch, ended when contact came back.
  const fences = rec.ended<FenceTraceContext>(channels.fence, a);
  expect(fences).toHaveLength(1);
  expect(fences[0]!.result!.outcome).toBe('unfenced');
  expect(fences[0]!.result!.durationMs).toBeGreaterThanOrEqual(150);
  expect(fences[0]!.reason).toMatch(/no contact/);
}, 60_000);
