import { SingleConsumer, type Message } from '../src';
import { KAFKA_BROKERS, produce, topics } from '@kiel/test-kit';

const t = topics();
afterAll(() => t.cleanup());

/** 12 partitions, 50 JSON messages each, value {p, i} so every message is identifiable. */
async function filledTopic(): Promise<string> {
  const topic = await t.create('single', 12);
  const messages = [];
  for (let p = 0; p < 12; p++) {
    for (let i = 0; i < 50; i++)
      messages.push({ partition: p, key: `k${p}-${i}`, value: JSON.stringify({ p, i }), headers: { h: `v${i}` } });
  }
  await produce(topic, messages);
  return topic;
}

function checkExactSequences(messages: Message<{ p: number; i: number }>[]): void {
  const byPartition = new Map<number, Message<{ p: number; i: number }>[]>();
  for (const m of messages) byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), m]);
  expect([...byPartition.keys()].sort((a, b) => a - b)).toEqual([...Array(12).keys()]);
  for (const [p, list] of byPartition) {
    expect(list.map((m) => m.offset)).toEqual([...Array(50).keys()]);
    expect(list.map((m) => m.value)).toEqual([...Array(50).keys()].map((i) => ({ p, i })));
    expect(list.map((m) => m.key?.toString())).toEqual([...Array(50).keys()].map((i) => `k${p}-${i}`));
    expect(list.map((m) => m.headers[0]?.value?.toString())).toEqual([...Array(50).keys()].map((i) => `v${i}`));
    for (const m of list) {
      expect(m.topic).toBeDefined();
      expect(m.timestamp).toBeGreaterThan(Date.now() - 600_000);
    }
  }
}

describe('SingleConsumer against the real broker', () => {
  it('reads the exact sequence of a 12-partition topic from the beginning with run({ eachBatch })', async () => {
    const topic = await filledTopic();
    const consumer = new SingleConsumer<{ p: number; i: number }>({
      brokers: KAFKA_BROKERS,
      topics: [topic],
      from: 'beginning',
      maxWaitTime: 200,
    });
    const received: Message<{ p: number; i: number }>[] = [];
    const done = consumer.run({
      eachBatch: async (batch) => {
        expect(batch.messages.every((m) => m.partition === batch.partition && m.topic === topic)).toBe(true);
        received.push(...batch.messages);
        if (received.length >= 600) void consumer.stop();
      },
    });
    await done;
    await consumer.close();
    checkExactSequences(received);
  });

  it("keeps kiel's pull style: consume(topic) returns fetched messages, and [] on an empty topic after maxWaitTime", async () => {
    const topic = await filledTopic();
    const consumer = new SingleConsumer<{ p: number; i: number }>({
      brokers: KAFKA_BROKERS,
      from: 'beginning',
      maxWaitTime: 300,
    });
    await consumer.connect();
    const received: Message<{ p: number; i: number }>[] = [];
    for (let round = 0; round < 50 && received.length < 600; round++) received.push(...(await consumer.consume(topic)));
    checkExactSequences(received);
    const started = Date.now();
    expect(await consumer.consume(topic)).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    await consumer.close();
  });

  it('starts at the end, and at a timestamp in the middle', async () => {
    const topic = await t.create('single-pos', 1);
    await produce(
      topic,
      [...Array(10).keys()].map((i) => ({ value: JSON.stringify(i), timestamp: String(1_700_000_000_000 + i * 1000) })),
    );
    const atEnd = new SingleConsumer<number>({
      brokers: KAFKA_BROKERS,
      topics: [topic],
      from: 'end',
      maxWaitTime: 200,
    });
    await atEnd.connect();
    await produce(topic, [{ value: JSON.stringify(100) }]);
    let got: Message<number>[] = [];
    for (let i = 0; i < 20 && got.length === 0; i++) got = await atEnd.consume(topic);
    expect(got.map((m) => m.value)).toEqual([100]);
    await atEnd.close();

    const middle = new SingleConsumer<number>({
      brokers: KAFKA_BROKERS,
      topics: [topic],
      from: new Date(1_700_000_000_000 + 6500),
      maxWaitTime: 200,
    });
    const values: number[] = [];
    for (let i = 0; i < 20 && values.length < 4; i++) values.push(...(await middle.consume(topic)).map((m) => m.value));
    expect(values).toEqual([7, 8, 9, 100]);
    await middle.close();
  });

  it('skips a message its deserializer rejects, reports it, and keeps going', async () => {
    const topic = await t.create('single-bad', 1);
    await produce(topic, [{ value: '1' }, { value: 'not json' }, { value: '3' }]);
    const consumer = new SingleConsumer<number>({
      brokers: KAFKA_BROKERS,
      topics: [topic],
      from: 'beginning',
      maxWaitTime: 200,
    });
    const skipped: Array<{ offset: number; code: string; raw: string | undefined }> = [];
    consumer.on('skipped', (s) => skipped.push({ offset: s.offset, code: s.error.code, raw: s.value?.toString() }));
    const values: number[] = [];
    for (let i = 0; i < 20 && values.length < 2; i++)
      values.push(...(await consumer.consume(topic)).map((m) => m.value));
    await consumer.close();
    expect(values).toEqual([1, 3]);
    expect(skipped).toEqual([{ offset: 1, code: 'ERR_DESERIALIZE', raw: 'not json' }]);
  });

  it('reports an unknown topic with ERR_UNKNOWN_TOPIC naming it', async () => {
    const consumer = new SingleConsumer({
      brokers: KAFKA_BROKERS,
      topics: ['kiel-no-such-topic-x'],
      topicWaitTimeout: 500,
    });
    await expect(consumer.connect()).rejects.toMatchObject({
      code: 'ERR_UNKNOWN_TOPIC',
      location: 'kiel-no-such-topic-x',
    });
    await consumer.close();
  });

  it('reports a dead broker port as ERR_NO_BROKERS within the connect timeout', async () => {
    const consumer = new SingleConsumer({
      brokers: ['127.0.0.1:1'],
      topics: ['x'],
      connectTimeout: 1000,
      retry: { retries: 0 },
    });
    const started = Date.now();
    await expect(consumer.connect()).rejects.toMatchObject({ code: 'ERR_NO_BROKERS' });
    expect(Date.now() - started).toBeLessThan(5000);
    await consumer.close();
  });

  it('rejects invalid options with ERR_INVALID_CONFIG naming the option', () => {
    expect(() => new SingleConsumer({ brokers: KAFKA_BROKERS, maxWaitTime: -1 })).toThrow(
      expect.objectContaining({ option: 'maxWaitTime' }),
    );
    expect(() => new SingleConsumer({ brokers: KAFKA_BROKERS, from: 'middle' as never })).toThrow(
      expect.objectContaining({ option: 'from' }),
    );
    expect(() => new SingleConsumer({ brokers: 'a:1' as never })).toThrow(
      expect.objectContaining({ option: 'brokers' }),
    );
    expect(() => new SingleConsumer({ brokers: KAFKA_BROKERS, deserializer: 'xml' as never })).toThrow(
      expect.objectContaining({ option: 'deserializer' }),
    );
  });
});
