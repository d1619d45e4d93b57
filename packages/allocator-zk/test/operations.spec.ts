// Restarts and deploys (issue 19) with real Kafka and the shared ZooKeeper, every member a process of its own: a named
// member killed and restarted within rebalanceDelay, a rolling restart with close({ restarting: true }), a freeze across
// a rolling deploy, and 32 members starting together with maxMovesPerRebalance
// (packages/test-kit/src/operations.ts). The etcd package runs the same cases.
import { describeOperations } from '@kiel/test-kit';
import { ZooKeeperBackend } from '../src';
import { endToEndBackend } from './helpers';

describeOperations({
  ...endToEndBackend,
  createBackend: (rootPath) => new ZooKeeperBackend({ hosts: endToEndBackend.hosts, rootPath, sessionTimeout: 4_000 }),
});
