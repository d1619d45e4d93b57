// Records are decoded when the application takes them, not when the fetch answer arrives (so they die young).
// A batch whose bytes do not decode is then found at hand-out time, possibly after later batches of its partition
// were already fetched and queued (pipelining). These tests hold the promise that this changes nothing for the
// application: the same typed error naming the partition and offset, the partition paused at the bad batch, no
// record after it handed out, and after a resume every record exactly once, in order.
//
// Kafka refuses corrupt batches on produce, so the fault is a decompression that fails: a gzip codec that throws on
// a batch holding a marked value, for as long as the test wants.
import { CodecRegistry, CompressionType, gzipCodec } from '@kiel/protocol';
import { CompressionTypes } from 'kafkajs';
import { SingleConsumer, channels, type KielError } from '../src';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { kafka, KAFKA_BROKERS, topics, waitFor } from '@kiel/test-kit';

const t = topics();
afterAll(() => t.cleanup());

const PER_BATCH = 5;
const BATCHES = 4;

/** Produces BATCHES gzip batches of PER_BATCH records to partition 0; the poisoned batch's values carry POISON. */
async function produceBatches(topic: string, poisonedBatch: number): Promise<string[]> {
  const values: string[] = [];
  const producer = kafka.producer();
  await producer.connect();
  try {
    for (let b = 0; b < BATCHES; b++) {
      const batch = Array.from(
        { length: PER_BATCH },
        (_, i) => `${b === poisonedBatch ? 'POISON' : 'ok'}-${b * PER_BATCH + i}`,
      );
      values.push(...batch);
      await producer.send({
        topic,
        acks: -1,
        compression: CompressionTypes.GZIP,
        messages: batch.map((value) => ({ partition: 0, value })),
      });
    }
  } finally {
    await producer.disconnect();
  }
  return values;
}

/** A gzip codec that fails on the poisoned batch while `poisoned.on` is true. */
function poisonedCodecs(poisoned: { on: boolean; failures: number }): CodecRegistry {
  return new CodecRegistry().register(CompressionType.GZIP, {
    name: 'gzip',
    compress: (data) => gzipCodec.compress(data),
    decompress: (data, limits) => {
      const out = gzipCodec.decompress(data, limits);
      if (poisoned.on && out.includes('POISON')) {
        poisoned.failures++;
        throw new Error('poisoned batch');
      }
      return out;
    },
  });
}

/** A consumer of partition 0 fetching one batch per fetch (a partition limit below a batch still brings one). */
function consumerOf(topic: string, poisoned: { on: boolean; failures: number }) {
  const consumer = new SingleConsumer<string>({
    brokers: KAFKA_BROKERS,
    topics: [topic],
    from: 'beginning',
    deserializer: 'string',
    maxWaitTime: 100,
    maxPartitionBytes: 1,
    codecs: poisonedCodecs(poisoned),
  });
  const errors: KielError[] = [];
  consumer.on('error', (err) => errors.push(err));
  return { consumer, errors };
}

function expectDecodeError(errors: KielError[], topic: string, offset: number): void {
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatchObject({ code: 'ERR_PROTOCOL', location: `${topic}-0` });
  expect(errors[0]!.message).toContain(`${topic}-0 at offset ${offset}`);
  expect(errors[0]!.message).toContain('ERR_DECOMPRESSION');
}

test('run(): a batch that fails to decode when handed out is a typed error, its partition paused there with nothing after it delivered; a resume delivers the rest exactly once', async () => {
  const topic = await t.create('decode-run', 1);
  await produceBatches(topic, 1);
  const poisoned = { on: true, failures: 0 };
  const { consumer, errors } = consumerOf(topic, poisoned);
  const delivered: number[] = [];
  try {
    const running = consumer.run({
      eachBatch: async (batch) => {
        for (const m of batch.messages) delivered.push(m.offset);
      },
    });
    await waitFor('the decode error', () => errors.length > 0);
    // Give a wrongly delivered later batch every chance to show up.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(delivered).toEqual([0, 1, 2, 3, 4]);
    expectDecodeError(errors, topic, PER_BATCH);
    expect(poisoned.failures).toBe(1);
    expect(consumer.metrics().partitions[0]).toMatchObject({ paused: true, position: PER_BATCH });

    poisoned.on = false;
    consumer.resume([{ topic, partition: 0 }]);
    await waitFor('every record', () => delivered.length >= PER_BATCH * BATCHES);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(delivered).toEqual(Array.from({ length: PER_BATCH * BATCHES }, (_, i) => i));
    await consumer.stop();
    await running;
  } finally {
    await consumer.close();
  }
});

test('consume(): the bad batch taken together with the next one of its partition; that one is not delivered, and nothing is lost after a resume', async () => {
  const topic = await t.create('decode-consume', 1);
  const values = await produceBatches(topic, 0);
  const poisoned = { on: true, failures: 0 };
  const { consumer, errors } = consumerOf(topic, poisoned);
  let fetchedWithRecords = 0;
  const onFetch = (message: unknown) => {
    const ctx = message as { consumer?: unknown; result?: { records: number } };
    if (ctx.consumer === consumer && (ctx.result?.records ?? 0) > 0) fetchedWithRecords++;
  };
  subscribe(`tracing:${channels.fetch}:asyncEnd`, onFetch);
  const delivered: string[] = [];
  try {
    // Connecting starts fetching; two batches wait in the queue (its bound per partition) before the first take.
    await consumer.connect();
    await waitFor('two batches queued', () => fetchedWithRecords >= 2);
    for (const m of await consumer.consume(topic)) delivered.push(m.value);
    expect(errors).toHaveLength(1);
    for (let i = 0; i < 5; i++) for (const m of await consumer.consume(topic)) delivered.push(m.value);
    expect(delivered).toEqual([]);
    expectDecodeError(errors, topic, 0);
    expect(poisoned.failures).toBe(1);

    poisoned.on = false;
    consumer.resume([{ topic, partition: 0 }]);
    await waitFor('every record', async () => {
      for (const m of await consumer.consume(topic)) delivered.push(m.value);
      return delivered.length >= values.length;
    });
    for (const m of await consumer.consume(topic)) delivered.push(m.value);
    expect(delivered).toEqual(values);
  } finally {
    unsubscribe(`tracing:${channels.fetch}:asyncEnd`, onFetch);
    await consumer.close();
  }
});
