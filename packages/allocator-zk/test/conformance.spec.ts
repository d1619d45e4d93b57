// The backend conformance suite of @kiel/consumer, run against the shared ZooKeeper of the local stack. Each
// backend talks through its own proxy, which is how the expiry cases expire a session for real.
import { runAllocatorBackendSuite } from '@kiel/consumer/testing';
import { randomRoot, removeTree, SessionExpirer } from './helpers';

const root = randomRoot();
const sessions = new SessionExpirer();

afterAll(async () => {
  await sessions.close();
  await removeTree(root);
});

runAllocatorBackendSuite({
  name: 'zookeeper',
  runner: { describe, it, expect, afterEach },
  factory: () =>
    sessions.backend({ rootPath: root, sessionTimeout: 4000, operationTimeout: 3000, connectTimeout: 5000 }),
  expireSession: (backend) => sessions.expire(backend),
  cleanupGroup: (group) => removeTree(`${root}/groups/${group}`),
  timeouts: { expiry: 15_000 },
});
