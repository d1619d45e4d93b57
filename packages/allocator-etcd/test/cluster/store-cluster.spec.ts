// EtcdBackend on the cluster stack's three-member etcd cluster (its multi-host connection string): the leader
// killed, the quorum lost for less and for more than the lease TTL, one member cut off by a proxy
// (packages/test-kit/src/store-cluster.ts; the ZooKeeper package runs the same cases on its ensemble).
import { describeStoreCluster } from '@kiel/test-kit';
import { EtcdBackend } from '../../src';
import { randomPrefix, rawClient } from '../helpers';

describeStoreCluster({
  name: 'EtcdBackend',
  kind: 'etcd',
  make: (hosts, prefix, sessionTimeout) => new EtcdBackend({ hosts, prefix, ttl: sessionTimeout / 1000 }),
  newNamespace: randomPrefix,
  removeNamespace: async (hosts, prefix) => {
    const client = rawClient(hosts);
    try {
      await client.delete().prefix(prefix);
    } finally {
      client.close();
    }
  },
});
