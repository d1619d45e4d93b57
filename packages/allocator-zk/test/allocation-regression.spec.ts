// PartitionAllocators on the shared ZooKeeper recover, with no operator action, from an allocation record that went
// below a generation they follow: written back by hand (a restored backup), or deleted
// (packages/test-kit/src/allocation-regression.ts, the same cases as etcd's).
import { describeAllocationRegression } from '@kiel/test-kit';
import { Backends, closeRaw, randomRoot, rawClient, removeTree, zkCall } from './helpers';

const root = randomRoot();
const backends = new Backends({ rootPath: root, sessionTimeout: 6000 });

describeAllocationRegression({
  name: 'ZooKeeper',
  make: () => backends.create(),
  connected: () => backends.open(),
  deleteRecord: async (location) => {
    const raw = await rawClient();
    try {
      await zkCall<void>((cb) => raw.remove(location, -1, (err) => cb(err, undefined)));
    } finally {
      await closeRaw(raw);
    }
  },
  closeAll: () => backends.closeAll(),
  cleanup: () => removeTree(root),
});
