// Log truncation after a real unclean leader election on the cluster (KIP-320). A partition on two replicas, leader
// L and follower F, min.insync.replicas=1: F is frozen until the controller drops it from the ISR, messages written
// to L alone are read by our consumers, then L is killed and F (stale) is elected leader uncleanly. F's log ends
// before what the consumers read. Our fetch carries lastFetchedEpoch (Fetch v12), so F answers with the diverging
// epoch, and each consumer must report the truncation (topic, partition, position, divergence point) instead of
// silently re-reading from the start or skipping what F writes next:
//   - offsetReset 'earliest' (the default): a `truncation` event and an ERR_LOG_TRUNCATED error, then it reads on
//     from the divergence point, so the records F takes from there are delivered;
//   - offsetReset 'error': the same report, and the partition is paused until the application seeks.
import type { Admin } from 'kafkajs';
import { SingleConsumer, type KielError } from '../../src';
import type { LogTruncation } from '../../src/fetch/fetcher';
import type { ClusterNode } from '../../../../scripts/cluster';
import { sleep, uniqueName, waitFor } from '@kiel/test-kit';
import { BROKERS, cluster, healCluster, kafka, retrying } from './helpers';

jest.setTimeout(240_000);

const node = (id: number) => `kafka-${id}` as ClusterNode;

let admin: Admin;
let topic: string;

beforeAll(async () => {
  await healCluster();
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  await healCluster().catch(() => undefined);
  if (topic) await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  await admin.disconnect();
});

async function produce(values: string[], acks: number): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await retrying(() => producer.connect());
  try {
    await retrying(() => producer.send({ topic, acks, messages: values.map((value) => ({ partition: 0, value })) }));
  } finally {
    await producer.disconnect();
  }
}

interface Reader {
  consumer: SingleConsumer<string>;
  handled: Array<{ offset: number; value: string }>;
  truncations: LogTruncation[];
  errors: KielError[];
  running: Promise<void>;
}

function reader(offsetReset: 'earliest' | 'error'): Reader {
  const consumer = new SingleConsumer<string>({
    brokers: BROKERS,
    topics: [topic],
    from: 'beginning',
    offsetReset,
    deserializer: 'string',
    maxWaitTime: 200,
    retry: { retries: 100, maxBackoff: 500 },
  });
  const r: Reader = { consumer, handled: [], truncations: [], errors: [], running: Promise.resolve() };
  consumer.on('truncation', (info) => r.truncations.push(info));
  consumer.on('error', (e) => r.errors.push(e));
  r.running = consumer.run({ eachMessage: (m) => void r.handled.push({ offset: m.offset, value: m.value }) });
  return r;
}

it('an unclean leader election that truncates the log below our position is reported, never silently re-read or skipped', async () => {
  // L and F must not be the only two controller voters left alive at any moment we need the quorum: the third
  // broker X stays up throughout.
  const [leader, follower] = [1, 2, 3].slice(0, 2);
  topic = uniqueName('cluster-truncation');
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      {
        topic,
        replicaAssignment: [{ partition: 0, replicas: [leader!, follower!] }],
        configEntries: [{ name: 'min.insync.replicas', value: '1' }],
      },
    ],
  });
  await cluster.waitForKafkaLeader(topic, 0, (l) => l.nodeId === leader && l.isr.length === 2);

  // 30 records on both replicas.
  await produce(
    Array.from({ length: 30 }, (_, i) => `both-${i}`),
    -1,
  );
  const earliest = reader('earliest');
  const strict = reader('error');
  try {
    await waitFor(
      '30 records read by both consumers',
      () => earliest.handled.length === 30 && strict.handled.length === 30,
      30_000,
    );

    // Freeze F until the controller fences it and shrinks the ISR to L alone; then 20 records only L has.
    await cluster.pause(node(follower!));
    await cluster.waitForKafkaLeader(topic, 0, (l) => l.isr.length === 1 && l.isr[0] === leader, 60_000);
    const before = await cluster.kafkaLeader(topic, 0);
    await produce(
      Array.from({ length: 20 }, (_, i) => `lost-${i}`),
      1,
    );
    await waitFor(
      '50 records read by both consumers',
      () => earliest.handled.length === 50 && strict.handled.length === 50,
      30_000,
    );

    // Kill L, wake F, and elect F although it is out of sync (unclean): its log ends at 30.
    await cluster.kill(node(leader!));
    await cluster.resume(node(follower!));
    await cluster.waitFor(
      'an unclean election of the stale follower',
      async () => {
        const results = await cluster.electLeaders('unclean', [{ topic, partitions: [0] }]);
        const l = await cluster.kafkaLeader(topic, 0);
        return l.nodeId === follower || results[0]?.error === 0 ? true : undefined;
      },
      60_000,
      500,
    );
    const after = await cluster.waitForKafkaLeader(topic, 0, (l) => l.nodeId === follower, 60_000);
    expect(after.leaderEpoch).toBeGreaterThan(before.leaderEpoch);

    // Both consumers report it: position 50, divergence at 30.
    await waitFor(
      'both consumers report the truncation',
      () => earliest.truncations.length > 0 && strict.truncations.length > 0,
      60_000,
    );
    for (const [r, action] of [
      [earliest, 'resumed'],
      [strict, 'paused'],
    ] as const) {
      expect(r.truncations).toEqual([
        {
          topic,
          partition: 0,
          position: 50,
          lastFetchedEpoch: before.leaderEpoch,
          divergingEpoch: expect.any(Number),
          divergenceOffset: 30,
          action,
        },
      ]);
      const reported = r.errors.filter((e) => e.code === 'ERR_LOG_TRUNCATED');
      expect(reported).toHaveLength(1);
      expect(reported[0]!.location).toBe(`${topic}-0`);
      expect(reported[0]!.message).toContain('position 50');
    }

    // F takes new records from offset 30 on: the default consumer reads them; nothing before 30 is read again.
    await produce(
      Array.from({ length: 5 }, (_, i) => `new-${i}`),
      -1,
    );
    await waitFor('the new records read', () => earliest.handled.length === 55, 60_000);
    expect(earliest.handled.map((h) => `${h.offset}:${h.value}`)).toEqual([
      ...Array.from({ length: 30 }, (_, i) => `${i}:both-${i}`),
      ...Array.from({ length: 20 }, (_, i) => `${30 + i}:lost-${i}`),
      ...Array.from({ length: 5 }, (_, i) => `${30 + i}:new-${i}`),
    ]);
    // The strict consumer stays paused: nothing more until the application seeks.
    await sleep(1_000);
    expect(strict.handled).toHaveLength(50);
  } finally {
    for (const r of [earliest, strict]) {
      await r.consumer.stop();
      await r.running;
      await r.consumer.close();
    }
    // L comes back, truncates its log to F's and follows it.
    await healCluster();
  }
});
