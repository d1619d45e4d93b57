// Handlers that outlive ownership, against real Kafka with the in-memory backend: a handoff under offsetReset
// 'latest', a handler that never returns, a handler finishing after its partition was dropped, batch handlers that
// stop early on their signal, kiel's pull style holding a handoff, and fencing that must not resume what the
// application paused. (Multi-process runs with CPU-bound handlers and SIGSTOP are in the backends' packages.)
import { naive, type Strategy } from '@kiel/allocators';
import {
  Cluster,
  GroupedConsumer,
  MemoryBackend,
  MemoryStore,
  OffsetStore,
  type Batch,
  type GroupedConsumerOptions,
  type KielError,
  type Message,
} from '../src/internal';
import {
  committedOffsets,
  gate,
  kafka,
  KAFKA_BROKERS,
  produce,
  sleep,
  topics,
  uniqueName,
  waitFor,
} from '@kiel/test-kit';

const t = topics();
afterAll(() => t.cleanup());

/**
 * Two members where `first` takes everything while alone and, once `second` joins, keeps exactly `firstKeeps`
 * (partition numbers of `topic`): which member gets what does not depend on the random member ids.
 */
function pair(
  topic: string,
  firstKeeps: number[],
  firstOptions: Partial<GroupedConsumerOptions<string>> = {},
  secondOptions: Partial<GroupedConsumerOptions<string>> = {},
) {
  const store = new MemoryStore();
  const group = uniqueName('kiel-safety');
  const split: Strategy = (members, partitions) => {
    if (members.length !== 2) return naive(members, partitions);
    const other = members.find((m) => m !== first.memberId)!;
    const mine: number[] = [];
    const theirs: number[] = [];
    for (const p of partitions) {
      const n = Number(String(p).slice(String(p).lastIndexOf(':') + 1));
      (firstKeeps.includes(n) ? mine : theirs).push(n);
    }
    return { [first.memberId]: { [topic]: mine }, [other]: { [topic]: theirs } };
  };
  const make = (extra: Partial<GroupedConsumerOptions<string>>) =>
    new GroupedConsumer<string>({
      brokers: KAFKA_BROKERS,
      group,
      topics: [topic],
      backend: new MemoryBackend({ store, sessionTimeout: 3000 }),
      strategy: split,
      deserializer: 'string',
      maxWaitTime: 100,
      ...extra,
    });
  const first = make(firstOptions);
  const second = make(secondOptions);
  return { first, second, group, store };
}

const values = (n: number, partition: number, prefix = '') =>
  [...Array(n).keys()].map((i) => ({ partition, value: `${prefix}${i}` }));

describe('handlers and ownership', () => {
  it("hands over the position offsetReset 'latest' found, so messages waiting in the old owner's buffer are not skipped", async () => {
    const topic = await t.create('latest', 2);
    const { first, second } = pair(topic, [0], { offsetReset: 'latest' }, { offsetReset: 'latest' });
    const busy = gate();
    const seen: Record<string, string[]> = { first: [], second: [] };
    const runs = [
      first.run({
        eachMessage: async (m: Message<string>) => {
          seen.first.push(`${m.partition}:${m.value}`);
          if (m.partition === 0) await busy.wait;
        },
      }),
    ];
    try {
      await waitFor('the first member to own both partitions', () => first.assignment.length === 2);
      // The reset positions are found before fetching starts: give the fetcher a moment to be at the end.
      await sleep(300);
      await produce(topic, values(1, 0, 'busy-'));
      await waitFor('the handler busy on partition 0', () => seen.first.length === 1);
      await produce(topic, values(50, 1));
      await sleep(500); // fetched into the first member's buffer, behind the busy handler
      runs.push(
        second.run({ eachMessage: async (m: Message<string>) => void seen.second.push(`${m.partition}:${m.value}`) }),
      );
      await waitFor('all 50 messages of partition 1 at the second member', () => seen.second.length >= 50, 15_000);
      busy.open();
      await sleep(300);
      expect(seen.second.sort()).toEqual(
        values(50, 1)
          .map((v) => `1:${v.value}`)
          .sort(),
      );
      expect(seen.first).toEqual(['0:busy-0']);
    } finally {
      busy.open();
      await Promise.all([first.close(), second.close()]);
      await Promise.all(runs);
    }
  });

  it('lets a partition go when its handler runs past handlerTimeout, reports it, and ignores the late result', async () => {
    const topic = await t.create('hung', 2);
    const { first, second, group } = pair(topic, [1], { handlerTimeout: 1000 });
    const hung = gate();
    const errors: KielError[] = [];
    first.on('error', (e) => errors.push(e));
    const firstSeen: string[] = [];
    const secondSeen: string[] = [];
    const runs = [
      first.run({
        eachMessage: async (m: Message<string>) => {
          firstSeen.push(`${m.partition}:${m.value}`);
          if (m.partition === 0 && m.value === 'hang') await hung.wait;
        },
      }),
    ];
    try {
      await waitFor('the first member to own both partitions', () => first.assignment.length === 2);
      await produce(topic, [{ partition: 0, value: 'before' }]);
      await waitFor('the first message handled', () => firstSeen.length === 1);
      await waitFor('its commit', async () => (await committedOffsets(group, topic, 2))[0] === 1);
      await produce(topic, [
        { partition: 0, value: 'hang' },
        { partition: 0, value: 'after' },
      ]);
      await waitFor('the handler hung', () => firstSeen.includes('0:hang'));
      const joined = performance.now();
      runs.push(
        second.run({ eachMessage: async (m: Message<string>) => void secondSeen.push(`${m.partition}:${m.value}`) }),
      );
      await waitFor('partition 0 at the second member', () => second.assignment.includes(`${topic}:0`), 10_000);
      expect(performance.now() - joined).toBeLessThan(5000);
      const timeout = errors.find((e) => e.code === 'ERR_HANDLER_TIMEOUT');
      expect(timeout?.location).toBe(`${topic}-0`);
      // The hung message was not handled: the next owner starts at it.
      await waitFor('the second member to handle from the hung message on', () => secondSeen.length === 2, 10_000);
      expect(secondSeen).toEqual(['0:hang', '0:after']);
      hung.open();
      await sleep(300);
      // The late handler finished after the handoff: it records no position, and commits nothing.
      expect(first.handledPositions.find((p) => p.partition === 0)).toBeUndefined();
      await second.commitOffsets();
      expect((await committedOffsets(group, topic, 2))[0]).toBe(3);
    } finally {
      hung.open();
      await Promise.all([first.close(), second.close()]);
      await Promise.all(runs.map((r) => r.catch(() => undefined)));
    }
  });

  it('aborts a batch handler’s signal on revocation; what it resolved stays with it, the rest goes to the next owner', async () => {
    const topic = await t.create('signal', 1);
    await produce(topic, values(200, 0));
    const { first, second } = pair(topic, [], {}, {});
    const firstSeen: string[] = [];
    const secondSeen: string[] = [];
    const reasons: string[] = [];
    let staleSeen = false;
    const runs = [
      first.run({
        eachBatch: async (batch: Batch<string>) => {
          for (const m of batch.messages) {
            if (batch.signal.aborted) {
              reasons.push((batch.signal.reason as KielError).code);
              staleSeen = batch.isStale();
              return;
            }
            firstSeen.push(m.value);
            batch.resolveOffset(m.offset);
            await sleep(20);
          }
        },
      }),
    ];
    try {
      await waitFor('the first member handling', () => firstSeen.length >= 5);
      runs.push(second.run({ eachMessage: async (m: Message<string>) => void secondSeen.push(m.value) }));
      await waitFor('every message handled once', () => firstSeen.length + secondSeen.length >= 200, 20_000);
      await sleep(300);
      expect(reasons).toEqual(['ERR_REVOKED']);
      expect(staleSeen).toBe(true);
      expect(secondSeen.length).toBeGreaterThan(0);
      expect([...firstSeen, ...secondSeen].sort()).toEqual(
        values(200, 0)
          .map((v) => v.value)
          .sort(),
      );
    } finally {
      await Promise.all([first.close(), second.close()]);
      await Promise.all(runs);
    }
  });

  it('holds a handoff while the application holds what consume() returned, and commits it when asked for more', async () => {
    const topic = await t.create('pull-hold', 2);
    await produce(topic, [...values(10, 0), ...values(10, 1)]);
    const { first, second, group } = pair(topic, [0]);
    await first.connect();
    try {
      await waitFor('the first member to own both partitions', () => first.assignment.length === 2);
      const held: Message<string>[] = [];
      await waitFor('both partitions returned', async () => {
        held.push(...(await first.consume(topic)));
        return new Set(held.map((m) => m.partition)).size === 2;
      });
      const heldOf1 = held.filter((m) => m.partition === 1).length;
      const secondSeen: Message<string>[] = [];
      const run = second.run({ eachMessage: async (m: Message<string>) => void secondSeen.push(m) });
      await sleep(1500);
      // The application may still be working on partition 1's messages: nobody else gets them meanwhile.
      expect(secondSeen).toEqual([]);
      expect(first.assignment).toContain(`${topic}:1`);
      await first.consume(topic);
      await waitFor('partition 1 at the second member', () => second.assignment.includes(`${topic}:1`));
      await produce(topic, values(5, 1, 'later-'));
      // The second member starts where the first one's handed-back messages end: nothing twice, nothing lost.
      await waitFor('the rest of partition 1', () => secondSeen.length === 15 - heldOf1, 10_000);
      expect(secondSeen.map((m) => m.offset)).toEqual([...Array(15 - heldOf1).keys()].map((i) => heldOf1 + i));
      // The first member's hand-back committed what the application had been handed.
      expect((await committedOffsets(group, topic, 2))[1]).toBeGreaterThanOrEqual(heldOf1);
      await second.close();
      await run;
    } finally {
      await Promise.all([first.close(), second.close()]);
    }
  });

  it('does not resume a partition the application paused when a fence is lifted', async () => {
    const topic = await t.create('paused-fence', 2);
    const store = new MemoryStore();
    const consumer = new GroupedConsumer<string>({
      brokers: KAFKA_BROKERS,
      group: uniqueName('kiel-paused'),
      topics: [topic],
      backend: new MemoryBackend({ store, sessionTimeout: 3000 }),
      fencingTimeout: 600,
      deserializer: 'string',
      maxWaitTime: 100,
    });
    const seen: string[] = [];
    const events: string[] = [];
    consumer.on('fenced', () => events.push('fenced'));
    consumer.on('unfenced', () => events.push('unfenced'));
    const run = consumer.run({
      eachMessage: async (m: Message<string>) => void seen.push(`${m.partition}:${m.value}`),
    });
    try {
      await waitFor('both partitions owned', () => consumer.assignment.length === 2);
      consumer.pause([{ topic, partition: 0 }]);
      const backend = (consumer as unknown as { allocator: { backend: MemoryBackend } }).allocator.backend;
      store.cutOffSession(backend.sessionId!);
      await waitFor('the member to fence itself', () => events.includes('fenced'), 5000);
      store.restoreSession(backend.sessionId!);
      await waitFor('the fence lifted', () => events.includes('unfenced'), 5000);
      await produce(topic, [...values(3, 0), ...values(3, 1)]);
      await waitFor('partition 1 flowing', () => seen.length === 3, 10_000);
      await sleep(500);
      expect(seen.sort()).toEqual(['1:0', '1:1', '1:2']);
      consumer.resume([{ topic, partition: 0 }]);
      await waitFor('partition 0 after resume()', () => seen.length === 6, 10_000);
    } finally {
      await consumer.close();
      await run;
    }
  });
});

describe('autocommit within a long batch', () => {
  it('commits what eachMessage handled every second, before the batch ends', async () => {
    const topic = await t.create('mid-batch', 1);
    await produce(topic, values(300, 0));
    const group = uniqueName('kiel-mid-batch');
    const consumer = new GroupedConsumer<string>({
      brokers: KAFKA_BROKERS,
      group,
      topics: [topic],
      backend: new MemoryBackend({ store: new MemoryStore(), sessionTimeout: 3000 }),
      deserializer: 'string',
      maxWaitTime: 100,
    });
    let handled = 0;
    const batches: number[] = [];
    consumer.on('batch', (b) => batches.push(b.messages));
    const run = consumer.run({
      eachMessage: async () => {
        handled++;
        await sleep(10);
      },
    });
    try {
      await waitFor(
        'a commit in the middle of the batch',
        async () => (await committedOffsets(group, topic, 1))[0]! > 0,
        10_000,
      );
      const committed = (await committedOffsets(group, topic, 1))[0]!;
      expect(batches).toEqual([300]);
      expect(committed).toBeLessThan(300);
      expect(committed).toBeLessThanOrEqual(handled);
    } finally {
      await consumer.close();
      await run;
    }
  });
});

describe('a deleted topic', () => {
  it('leaves the group: its partitions are handed back without a commit, and the other topics keep flowing', async () => {
    const gone = await t.create('deleted', 2);
    const stays = await t.create('stays', 1);
    const consumer = new GroupedConsumer<string>({
      brokers: KAFKA_BROKERS,
      group: uniqueName('kiel-deleted'),
      topics: [gone, stays],
      backend: new MemoryBackend({ store: new MemoryStore(), sessionTimeout: 3000 }),
      deserializer: 'string',
      maxWaitTime: 100,
      metadataMaxAge: 500,
    });
    const errors: KielError[] = [];
    consumer.on('error', (e) => errors.push(e));
    const seen: string[] = [];
    const run = consumer.run({ eachMessage: async (m: Message<string>) => void seen.push(`${m.topic}:${m.value}`) });
    try {
      await waitFor('every partition owned', () => consumer.assignment.length === 3);
      await produce(gone, [
        { partition: 0, value: 'a' },
        { partition: 1, value: 'b' },
      ]);
      await waitFor('the deleted topic read before', () => seen.length === 2);
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [gone] });
      await admin.disconnect();
      await waitFor(
        'its partitions gone from the member',
        () => consumer.assignment.every((id) => id.startsWith(`${stays}:`)),
        20_000,
      );
      expect(consumer.assignment).toEqual([`${stays}:0`]);
      expect(errors.some((e) => e.code === 'ERR_UNKNOWN_TOPIC' && e.location === gone)).toBe(true);
      await produce(stays, [{ partition: 0, value: 'c' }]);
      await waitFor('the other topic still flowing', () => seen.includes(`${stays}:c`), 10_000);
    } finally {
      await consumer.close();
      await run;
    }
  });
});

describe('OffsetStore.commit', () => {
  it('asks keep() again before a retry, so a partition no longer owned is dropped from it', async () => {
    const topic = await t.create('commit-keep', 2);
    const group = uniqueName('kiel-keep');
    const cluster = new Cluster({ brokers: KAFKA_BROKERS, clientId: 'kiel-test' });
    await cluster.connect();
    try {
      const store = new OffsetStore(cluster, group, 'test');
      let attempts = 0;
      // Metadata over the broker's limit fails the first attempt; the retry goes without it.
      const result = await store.commit(
        [
          { topic, partition: 0, offset: 5 },
          { topic, partition: 1, offset: 7 },
        ],
        {
          metadata: 'x'.repeat(5000),
          keep: (o) => {
            attempts++;
            return attempts <= 2 || o.partition === 0;
          },
        },
      );
      expect(result.committed).toEqual([{ topic, partition: 0, offset: 5 }]);
      expect(await committedOffsets(group, topic, 2)).toEqual([5, -1]);
    } finally {
      cluster.close();
    }
  });
});
