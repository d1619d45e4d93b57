// kafkajs as the independent producer and admin client of the tests.
import { Kafka, logLevel, type Admin, type Message as KafkaJsMessage } from 'kafkajs';
import { KAFKA_BROKERS, uniqueName } from './env';

/** A kafkajs client of the shared Kafka: the tests' independent producer and admin. */
export const kafka = new Kafka({ clientId: 'kiel-test', brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });

/** Creates a uniquely named topic; `cleanup()` deletes every topic created through it. */
export function topics() {
  let admin: Admin | undefined;
  const created: string[] = [];
  return {
    async create(prefix: string, numPartitions: number): Promise<string> {
      admin ??= kafka.admin();
      await admin.connect();
      const topic = uniqueName(prefix);
      await admin.createTopics({ topics: [{ topic, numPartitions }], waitForLeaders: true });
      created.push(topic);
      return topic;
    },
    async cleanup(): Promise<void> {
      if (!admin) return;
      await admin.deleteTopics({ topics: created }).catch(() => undefined);
      await admin.disconnect();
    },
  };
}

/** Produces messages with kafkajs (acks=all) and returns what was sent per partition. */
export async function produce(topic: string, messages: KafkaJsMessage[]): Promise<void> {
  const producer = kafka.producer();
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += 5000) {
      await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 5000) });
    }
  } finally {
    await producer.disconnect();
  }
}
