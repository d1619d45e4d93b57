// Fetches have connections of their own. A broker reads one request per connection at a time and answers in order, so
// a fetch parked in a long poll (nothing new to read, `maxWaitTime` not yet over) would hold up whatever follows it on
// the same connection: a commit, an offset read, a ListOffsets. Real Kafka, an in-memory allocator backend.
import { GroupedConsumer, MemoryBackend, MemoryStore, SingleConsumer, type Message } from '../src';
import { committedOffsets, KAFKA_BROKERS, produce, topics, uniqueName, waitFor } from '@kiel/test-kit';

const t = topics();
afterAll(() => t.cleanup());

/** Far longer than every bound below: a request queued behind a parked fetch would wait this long. */
const LONG_POLL_MS = 30_000;
const PARTITIONS = 4;

describe('fetch connections', () => {
  it(`a graceful leave while every fetch is parked in a ${LONG_POLL_MS / 1000} s long poll: the leaver's last commit goes out at once, and the new owner starts from it`, async () => {
    const topic = await t.create('long-poll', PARTITIONS);
    const group = uniqueName('long-poll');
    const store = new MemoryStore();
    const handled: Array<{ member: string; partition: number; offset: number }> = [];
    const member = (name: string) => {
      const consumer = new GroupedConsumer<Buffer>({
        brokers: KAFKA_BROKERS,
        group,
        topics: [topic],
        backend: new MemoryBackend({ store, sessionTimeout: 3000 }),
        deserializer: 'raw',
        offsetReset: 'earliest',
        maxWaitTime: LONG_POLL_MS,
      });
      const running = consumer.run({
        eachMessage: async (m: Message<Buffer>) =>
          void handled.push({ member: name, partition: m.partition, offset: m.offset }),
      });
      return { consumer, running };
    };
    const a = member('a');
    await a.consumer.connect();
    const b = member('b');
    await b.consumer.connect();
    try {
      await waitFor(
        'both members to own two partitions each',
        () => a.consumer.assignment.length === 2 && b.consumer.assignment.length === 2,
        20_000,
      );
      const moving = b.consumer.assignment.map((id) => Number(id.slice(id.lastIndexOf(':') + 1)));
      // One message on each of b's partitions, handled by b; then both members' fetches park on an idle topic.
      await produce(
        topic,
        moving.map((partition) => ({ partition, value: 'first' })),
      );
      await waitFor('b to handle its messages', () => handled.filter((h) => h.member === 'b').length === 2, 20_000);
      await new Promise((resolve) => setTimeout(resolve, 1_000));

      const closeStarted = performance.now();
      await b.consumer.close();
      const closeMs = performance.now() - closeStarted;
      await b.running.catch(() => undefined);
      const committed = await committedOffsets(group, topic, PARTITIONS);

      const movedAt = performance.now();
      await produce(
        topic,
        moving.map((partition) => ({ partition, value: 'second' })),
      );
      // The new owner reads b's commit at once and polls the moved partitions on the eager lane (at most 100 ms a
      // fetch) while its session fetch is parked.
      await waitFor(
        "a to handle the moved partitions' new messages",
        () => moving.every((p) => handled.some((h) => h.member === 'a' && h.partition === p && h.offset === 1)),
        LONG_POLL_MS + 15_000,
      );
      const movedMs = performance.now() - movedAt;
      process.stdout.write(
        `leave with fetches parked: close ${Math.round(closeMs)} ms, the new owner's first message of the moved ` +
          `partitions ${Math.round(movedMs)} ms after the produce\n`,
      );

      expect({
        closeWithinBound: closeMs < LONG_POLL_MS / 3,
        movedWithinBound: movedMs < LONG_POLL_MS / 3,
        committed: moving.map((p) => committed[p]),
        handledTwice: handled.filter((h) => h.member === 'a' && moving.includes(h.partition) && h.offset === 0),
      }).toEqual({
        closeWithinBound: true,
        movedWithinBound: true,
        committed: [1, 1],
        handledTwice: [],
      });
    } finally {
      await b.consumer.close();
      await a.consumer.close();
      await a.running.catch(() => undefined);
    }
  }, 120_000);

  it(`a partition added while both the session fetch and an eager fetch wait on idle partitions gets its first message within seconds, not after the ${LONG_POLL_MS / 1000} s long poll`, async () => {
    const [parked, alsoIdle, busy] = await Promise.all([
      t.create('idle-session', 1),
      t.create('idle-eager', 1),
      t.create('busy', 1),
    ]);
    await produce(busy, [{ partition: 0, value: 'waiting' }]);
    const seen: Array<{ topic: string; at: number }> = [];
    const consumer = new SingleConsumer<Buffer>({
      brokers: KAFKA_BROKERS,
      topics: [parked],
      from: 'beginning',
      deserializer: 'raw',
      maxWaitTime: LONG_POLL_MS,
    });
    const running = consumer.run({
      eachMessage: async (m: Message<Buffer>) => void seen.push({ topic: m.topic, at: performance.now() }),
    });
    try {
      await consumer.connect();
      // The session fetch goes out for `parked` and waits; `alsoIdle` then gets the broker's one eager fetch.
      await new Promise((resolve) => setTimeout(resolve, 500));
      await consumer.subscribe([alsoIdle]);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const added = performance.now();
      await consumer.subscribe([busy]);
      await waitFor(
        'the message waiting on the added topic',
        () => seen.some((s) => s.topic === busy),
        LONG_POLL_MS + 15_000,
      );
      const firstMs = seen.find((s) => s.topic === busy)!.at - added;
      // stop() ends run() without sitting out the long poll the run loop waits in.
      const stopStarted = performance.now();
      await consumer.stop();
      const stopMs = performance.now() - stopStarted;
      process.stdout.write(
        `a partition added behind two parked fetches: first message after ${Math.round(firstMs)} ms; ` +
          `stop() ${Math.round(stopMs)} ms\n`,
      );
      // Before the eager fetch's wait was bounded (100 ms), the first message took what was left of the long poll
      // (about 29 s); before stop() interrupted the run loop's wait, so did stop().
      expect({
        firstWithinBound: firstMs < 5_000,
        stopWithinBound: stopMs < 5_000,
        topics: seen.map((s) => s.topic),
      }).toEqual({
        firstWithinBound: true,
        stopWithinBound: true,
        topics: [busy],
      });
    } finally {
      await consumer.stop();
      await running.catch(() => undefined);
      await consumer.close();
    }
  }, 120_000);
});
