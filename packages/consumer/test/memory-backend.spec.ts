// MemoryBackend runs the same conformance suite as the ZooKeeper and etcd backends.
import { MemoryBackend, MemoryStore } from '../src';
import { runAllocatorBackendSuite } from '../src/testing';

const store = new MemoryStore();

runAllocatorBackendSuite({
  name: 'memory',
  runner: { describe, it, expect, afterEach },
  factory: () => new MemoryBackend({ store, sessionTimeout: 2_000 }),
  expireSession: async (backend) => {
    const sessionId = (backend as MemoryBackend).sessionId;
    if (sessionId === undefined || !store.expireSession(sessionId)) {
      throw new Error(`expireSession: no live session to expire (${String(sessionId)})`);
    }
  },
});
