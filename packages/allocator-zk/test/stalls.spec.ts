// Stalled partitions and poison messages (issue 19) with real Kafka and the shared ZooKeeper, every member a process of
// its own: a handler that hangs on one partition (only that partition is handed off) and a message that makes the
// process exit every time (onPoison after 3 crashes) (packages/test-kit/src/stalls.ts). The etcd package runs
// the same cases.
import { describeStalls } from '@kiel/test-kit';
import { ZooKeeperBackend } from '../src';
import { endToEndBackend } from './helpers';

describeStalls({
  ...endToEndBackend,
  createBackend: (rootPath) => new ZooKeeperBackend({ hosts: endToEndBackend.hosts, rootPath, sessionTimeout: 4_000 }),
});
