// Proves the local stack's Kafka works end to end with an independent client (kafkajs):
// create a topic, produce 100 messages, consume them back through a consumer group.
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';

const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

describe('local stack: Kafka', () => {
  const kafka = new Kafka({ clientId: 'kiel-smoke', brokers, logLevel: logLevel.NOTHING });
  const topic = `kiel-smoke-${randomUUID()}`;
  const admin = kafka.admin();

  beforeAll(async () => {
    await admin.connect();
  });

  afterAll(async () => {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('creates a topic, produces 100 messages and consumes the same 100 back', async () => {
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
    const producer = kafka.producer();
    await producer.connect();
    const sent = Array.from({ length: 100 }, (_, i) => ({ key: `k${i}`, value: `value-${i}` }));
    await producer.send({ topic, messages: sent });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: `kiel-smoke-${randomUUID()}` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received: string[] = [];
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ message }) => {
            received.push(`${message.key?.toString()}=${message.value?.toString()}`);
            if (received.length === sent.length) resolve();
          },
        })
        .catch(reject);
    });
    await consumer.disconnect();

    expect(received.sort()).toEqual(sent.map((m) => `${m.key}=${m.value}`).sort());
  });
});
