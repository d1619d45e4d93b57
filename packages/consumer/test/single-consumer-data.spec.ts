// SingleConsumer on data from other producers: kcat (librdkafka) under every codec, and kafkajs transactions
// under read_committed. Also TLS and SASL misconfiguration, and pause/resume.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { SingleConsumer, type Message } from '../src';
import {
  kafka,
  KAFKA_BROKERS,
  KAFKA_SASL_BROKERS,
  KAFKA_SASL_PASSWORD,
  KAFKA_SASL_USER,
  KAFKA_TLS_BROKERS,
  KAFKA_TLS_CA,
  KCAT,
  topics,
  waitFor,
} from '@kiel/test-kit';

const t = topics();
afterAll(() => t.cleanup());

async function readAll<V>(consumer: SingleConsumer<V>, topic: string, count: number): Promise<Message<V>[]> {
  const out: Message<V>[] = [];
  for (let i = 0; i < 100 && out.length < count; i++) out.push(...(await consumer.consume(topic)));
  return out;
}

describe('SingleConsumer on data from other producers', () => {
  it.each(['none', 'gzip', 'snappy', 'lz4', 'zstd'])('reads what kcat produced with compression %s', async (codec) => {
    const topic = await t.create(`kcat-${codec}`, 1);
    const lines = Array.from({ length: 200 }, (_, i) => `key-${i}:${JSON.stringify({ i, text: 'y'.repeat(i % 50) })}`);
    const r = spawnSync(KCAT, ['-P', '-b', KAFKA_BROKERS[0]!, '-t', topic, '-z', codec, '-K:', '-H', 'origin=kcat'], {
      input: lines.join('\n') + '\n',
    });
    expect(r.status).toBe(0);
    const consumer = new SingleConsumer<{ i: number; text: string }>({
      brokers: KAFKA_BROKERS,
      topics: [topic],
      from: 'beginning',
      maxWaitTime: 200,
    });
    const got = await readAll(consumer, topic, 200);
    await consumer.close();
    expect(got.map((m) => m.offset)).toEqual([...Array(200).keys()]);
    expect(got.map((m) => m.key?.toString())).toEqual(lines.map((l) => l.split(':')[0]));
    expect(got.map((m) => m.value)).toEqual([...Array(200).keys()].map((i) => ({ i, text: 'y'.repeat(i % 50) })));
    expect(
      got.every(
        (m) => m.headers.length === 1 && m.headers[0]!.key === 'origin' && m.headers[0]!.value?.toString() === 'kcat',
      ),
    ).toBe(true);
  });

  it('hides aborted transactions under read_committed, and shows them under read_uncommitted', async () => {
    const topic = await t.create('txn', 1);
    const producer = kafka.producer({
      transactionalId: `kiel-test-${topic}`,
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    for (const [label, commit] of [
      ['a', true],
      ['b', false],
      ['c', true],
    ] as const) {
      const txn = await producer.transaction();
      await txn.send({ topic, messages: [0, 1, 2].map((i) => ({ value: JSON.stringify(`${label}${i}`) })) });
      if (commit) await txn.commit();
      else await txn.abort();
    }
    await producer.disconnect();
    const committed = new SingleConsumer<string>({
      brokers: KAFKA_BROKERS,
      topics: [topic],
      from: 'beginning',
      isolationLevel: 'read_committed',
      maxWaitTime: 200,
    });
    expect((await readAll(committed, topic, 6)).map((m) => m.value)).toEqual(['a0', 'a1', 'a2', 'c0', 'c1', 'c2']);
    await committed.close();
    const uncommitted = new SingleConsumer<string>({
      brokers: KAFKA_BROKERS,
      topics: [topic],
      from: 'beginning',
      maxWaitTime: 200,
    });
    expect((await readAll(uncommitted, topic, 9)).map((m) => m.value)).toEqual([
      'a0',
      'a1',
      'a2',
      'b0',
      'b1',
      'b2',
      'c0',
      'c1',
      'c2',
    ]);
    await uncommitted.close();
  });

  it('notices partitions added to its topic and reads them from their beginning', async () => {
    const topic = await t.create('grow', 1);
    const consumer = new SingleConsumer<number>({
      brokers: KAFKA_BROKERS,
      topics: [topic],
      from: 'end',
      maxWaitTime: 100,
      metadataMaxAge: 300,
    });
    try {
      await consumer.connect();
      const admin = kafka.admin();
      await admin.connect();
      await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
      // New partitions get their leaders a moment later; a produce before that is retried by kafkajs, which (not
      // idempotent) could write the other partition's message twice.
      await waitFor('leaders for the new partitions', async () => {
        const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
        const partitions = topics[0]?.partitions ?? [];
        return partitions.length === 3 && partitions.every((p) => p.leader >= 0);
      });
      await admin.disconnect();
      const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      await producer.send({ topic, messages: [1, 2].map((partition) => ({ partition, value: String(partition) })) });
      await producer.disconnect();
      const got = await readAll(consumer, topic, 2);
      expect(got.map((m) => `${m.partition}@${m.offset}=${m.value}`).sort()).toEqual(['1@0=1', '2@0=2']);
    } finally {
      await consumer.close();
    }
  });

  it('pauses and resumes a partition', async () => {
    const topic = await t.create('pause', 2);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: [0, 1].flatMap((partition) => [1, 2, 3].map((i) => ({ partition, value: String(i) }))),
    });
    const consumer = new SingleConsumer<number>({
      brokers: KAFKA_BROKERS,
      topics: [topic],
      from: 'beginning',
      maxWaitTime: 200,
    });
    await consumer.connect();
    consumer.pause([{ topic, partition: 1 }]);
    const first = await readAll(consumer, topic, 3);
    expect(first.every((m) => m.partition === 0)).toBe(true);
    expect(await consumer.consume(topic)).toEqual([]);
    consumer.resume([{ topic, partition: 1 }]);
    const second = await readAll(consumer, topic, 3);
    expect(second.map((m) => `${m.partition}:${m.value}`)).toEqual(['1:1', '1:2', '1:3']);
    await producer.disconnect();
    await consumer.close();
  });
});

describe('SingleConsumer configuration errors, reported clearly', () => {
  it('reports an untrusted TLS certificate as ERR_TLS, and reads over TLS with the right CA', async () => {
    const topic = await t.create('tls', 1);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: '"over tls"' }] });
    await producer.disconnect();
    const bad = new SingleConsumer({ brokers: KAFKA_TLS_BROKERS, tls: true, topics: [topic] });
    await expect(bad.connect()).rejects.toMatchObject({ code: 'ERR_TLS' });
    await bad.close();
    const good = new SingleConsumer<string>({
      brokers: KAFKA_TLS_BROKERS,
      tls: { ca: fs.readFileSync(KAFKA_TLS_CA) },
      topics: [topic],
      from: 'beginning',
      maxWaitTime: 200,
    });
    expect((await readAll(good, topic, 1)).map((m) => m.value)).toEqual(['over tls']);
    await good.close();
  });

  it('reports a wrong SASL password as ERR_SASL, and reads with SCRAM-SHA-512', async () => {
    const topic = await t.create('sasl', 1);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: '"over sasl"' }] });
    await producer.disconnect();
    const bad = new SingleConsumer({
      brokers: KAFKA_SASL_BROKERS,
      sasl: { mechanism: 'SCRAM-SHA-256', username: KAFKA_SASL_USER, password: 'nope' },
      topics: [topic],
    });
    await expect(bad.connect()).rejects.toMatchObject({ code: 'ERR_SASL' });
    await bad.close();
    const good = new SingleConsumer<string>({
      brokers: KAFKA_SASL_BROKERS,
      sasl: { mechanism: 'SCRAM-SHA-512', username: KAFKA_SASL_USER, password: KAFKA_SASL_PASSWORD },
      topics: [topic],
      from: 'beginning',
      maxWaitTime: 200,
    });
    expect((await readAll(good, topic, 1)).map((m) => m.value)).toEqual(['over sasl']);
    await good.close();
  });

  it('rejects a SASL mechanism it does not know with ERR_INVALID_CONFIG', () => {
    expect(
      () =>
        new SingleConsumer({
          brokers: KAFKA_BROKERS,
          sasl: { mechanism: 'GSSAPI', username: 'a', password: 'b' } as never,
        }),
    ).toThrow(expect.objectContaining({ code: 'ERR_INVALID_CONFIG', option: 'sasl.mechanism' }));
  });
});
