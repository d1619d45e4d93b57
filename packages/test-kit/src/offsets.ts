// The committed offsets of a group, read with our own OffsetStore on a fresh cluster connection.
import { Cluster, OffsetStore } from '@kiel/consumer/internal';
import { KAFKA_BROKERS } from './env';

/** The committed offset of each partition `0..partitions-1` of `topic` in `group`; -1 where nothing was committed. */
export async function committedOffsets(group: string, topic: string, partitions: number): Promise<number[]> {
  const cluster = new Cluster({ brokers: KAFKA_BROKERS, clientId: 'kiel-test' });
  await cluster.connect();
  try {
    const offsets = await new OffsetStore(cluster, group, 'test').fetch(
      [...Array(partitions).keys()].map((partition) => ({ topic, partition })),
    );
    return [...Array(partitions).keys()].map((p) => offsets.get(`${topic}:${p}`) ?? -1);
  } finally {
    cluster.close();
  }
}
