// ZooKeeperBackend on the cluster stack's three-server ensemble (its multi-host connection string): the leader
// killed, the quorum lost for less and for more than the session, one member cut off by a proxy
// (packages/test-kit/src/store-cluster.ts; the etcd package runs the same cases on its cluster).
import { describeStoreCluster } from '@kiel/test-kit';
import { ZooKeeperBackend } from '../../src';
import { randomRoot, removeTree } from '../helpers';

describeStoreCluster({
  name: 'ZooKeeperBackend',
  kind: 'zk',
  make: (hosts, rootPath, sessionTimeout) => new ZooKeeperBackend({ hosts, rootPath, sessionTimeout }),
  newNamespace: randomRoot,
  removeNamespace: (hosts, root) => removeTree(root, hosts),
});
