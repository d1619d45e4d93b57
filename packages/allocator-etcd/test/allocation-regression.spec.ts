// PartitionAllocators on the shared etcd recover, with no operator action, from an allocation record that went below
// a generation they follow: written back by hand (a restored backup), or deleted
// (packages/test-kit/src/allocation-regression.ts, the same cases as ZooKeeper's).
import { describeAllocationRegression } from '@kiel/test-kit';
import { Backends, randomPrefix, rawClient, sharedHosts } from './helpers';

const prefix = randomPrefix();
const raw = rawClient(sharedHosts);
const backends = new Backends({ hosts: sharedHosts, prefix, ttl: 5, operationTimeout: 3_000 });

describeAllocationRegression({
  name: 'etcd',
  make: () => backends.make(),
  connected: () => backends.connected(),
  deleteRecord: async (location) => {
    await raw.delete().key(location);
  },
  closeAll: () => backends.closeAll(),
  cleanup: async () => {
    await raw.delete().prefix(prefix);
    raw.close();
  },
});
