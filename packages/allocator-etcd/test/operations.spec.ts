// Restarts and deploys (issue 19) with real Kafka and the shared etcd, every member a process of its own: a named
// member killed and restarted within rebalanceDelay, a rolling restart with close({ restarting: true }), a freeze across
// a rolling deploy, and 32 members starting together with maxMovesPerRebalance
// (packages/test-kit/src/operations.ts). The ZooKeeper package runs the same cases.
import { describeOperations } from '@kiel/test-kit';
import { EtcdBackend } from '../src';
import { endToEndBackend } from './helpers';

describeOperations({
  ...endToEndBackend,
  createBackend: (prefix) => new EtcdBackend({ hosts: endToEndBackend.hosts, prefix, ttl: 4 }),
});
