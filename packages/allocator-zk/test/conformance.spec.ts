// The backend conformance suite of @kiel/consumer, run against the shared ZooKeeper of the local stack.
import { runAllocatorBackendSuite } from '@kiel/consumer/testing';
import { ZooKeeperBackend } from '../src';
import { expireSession, randomRoot, removeTree, ZK_HOSTS } from './helpers';

const root = randomRoot();

afterAll(async () => {
  await removeTree(root);
});

runAllocatorBackendSuite({
  name: 'zookeeper',
  factory: () =>
    new ZooKeeperBackend({
      hosts: ZK_HOSTS,
      rootPath: root,
      sessionTimeout: 4000,
      operationTimeout: 3000,
      connectTimeout: 5000,
    }),
  expireSession: (backend) => expireSession(backend),
  cleanupGroup: (group) => removeTree(`${root}/groups/${group}`),
  timeouts: { expiry: 15_000 },
});
