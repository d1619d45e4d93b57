// The cluster stack itself (scripts/stack up --cluster, scripts/cluster.js): three brokers that each lead some
// partitions of a replicated topic, a ZooKeeper ensemble and an etcd cluster that each elect a new leader when
// theirs is killed.
import { Kafka, logLevel } from 'kafkajs';
import * as cluster from '../../../../scripts/cluster';
import { uniqueName } from '@kiel/test-kit';

jest.setTimeout(120_000);

describe('the cluster stack', () => {
  it('has three brokers, and a replicated topic has leaders on all three', async () => {
    const { kafka: brokers } = cluster.hosts();
    const md = await cluster.kafkaMetadata([]);
    expect(md.brokers.map((b) => b.nodeId).sort()).toEqual([1, 2, 3]);
    const kafka = new Kafka({ clientId: 'kiel-test', brokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    const topic = uniqueName('cluster-stack');
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 6, replicationFactor: 3 }], waitForLeaders: true });
      const leaders = await Promise.all([0, 1, 2, 3, 4, 5].map((p) => cluster.waitForKafkaLeader(topic, p)));
      expect(new Set(leaders.map((l) => l.node)).size).toBe(3);
      for (const l of leaders) expect(l.replicas.sort()).toEqual([1, 2, 3]);
    } finally {
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  it.each([['zk'], ['etcd']] as const)('%s: a killed leader is replaced, and comes back as a member', async (kind) => {
    const leaderOf = kind === 'zk' ? cluster.waitForZkLeader : cluster.waitForEtcdLeader;
    const first = await leaderOf();
    await cluster.kill(first);
    expect(cluster.state(first)).toBe('stopped');
    const second = await leaderOf();
    expect(second).not.toBe(first);
    await cluster.start(first);
    await cluster.waitAllReady();
    expect(await leaderOf()).toBe(second);
  });
});
