// A broker restart in mid-consumption loses and duplicates nothing. Runs on a private broker (scripts/stack on
// free ports) so that the shared one is never restarted.
import { Kafka, logLevel } from 'kafkajs';
import { SingleConsumer } from '../src';
import { PrivateKafka, waitFor } from '@kiel/test-kit';

jest.setTimeout(180_000);

describe('SingleConsumer across a broker restart', () => {
  let server: PrivateKafka;
  beforeAll(async () => {
    server = await PrivateKafka.start();
  });
  afterAll(() => server?.destroy());

  it('resumes after `scripts/stack restart kafka` with every message exactly once', async () => {
    const kafka = new Kafka({ clientId: 'kiel-test', brokers: server.brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const topic = 'restart';
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
    await admin.disconnect();
    const produce = async (from: number, count: number) => {
      const producer = kafka.producer();
      await producer.connect();
      await producer.send({
        topic,
        acks: -1,
        messages: Array.from({ length: count }, (_, i) => ({ partition: (from + i) % 3, value: String(from + i) })),
      });
      await producer.disconnect();
    };
    await produce(0, 3000);

    const consumer = new SingleConsumer<number>({
      brokers: server.brokers,
      topics: [topic],
      from: 'beginning',
      maxWaitTime: 200,
      maxBytes: 16 * 1024,
      retry: { retries: 30 },
    });
    const seen = new Map<number, number>();
    const running = consumer.run({
      eachBatch: async (batch) => {
        for (const m of batch.messages) seen.set(m.value, (seen.get(m.value) ?? 0) + 1);
        // About 0.5 ms per message, so that the first 3000 take over a second and the restart lands mid-stream
        // however few batches the broker returns them in.
        await new Promise((resolve) => setTimeout(resolve, 5 + batch.messages.length / 2));
      },
    });
    await waitFor('some messages before the restart', () => seen.size > 300);
    expect(seen.size).toBeLessThan(3000);
    server.run('restart', 'kafka');
    await produce(3000, 1000);
    await waitFor('all 4000 messages after the restart', () => seen.size >= 4000, 60_000);
    await consumer.stop();
    await running;
    await consumer.close();
    expect([...seen.keys()].sort((a, b) => a - b)).toEqual([...Array(4000).keys()]);
    expect([...seen.values()].filter((n) => n !== 1)).toEqual([]);
  });
});
