// The backend conformance suite of @kiel/consumer, run against the shared etcd of the local stack.
import { runAllocatorBackendSuite } from '@kiel/consumer/testing';
import { EtcdBackend } from '../src';
import { randomPrefix, rawClient, sharedHosts } from './helpers';

const prefix = randomPrefix();
// A second, independent client: it expires sessions the way etcd would, by revoking their lease.
const admin = rawClient(sharedHosts);

afterAll(async () => {
  await admin.delete().prefix(prefix);
  admin.close();
});

runAllocatorBackendSuite({
  name: 'etcd',
  runner: { describe, it, expect, afterEach },
  // The smallest TTL etcd grants by default keeps the expiry cases fast.
  factory: () => new EtcdBackend({ hosts: sharedHosts, prefix, ttl: 2 }),
  expireSession: async (backend) => {
    const leaseId = (backend as EtcdBackend).sessionId;
    if (leaseId === undefined) throw new Error('expireSession: the backend holds no lease');
    await admin.leaseClient.leaseRevoke({ ID: leaseId });
  },
  cleanupGroup: async (group) => {
    await admin.delete().prefix(`${prefix}groups/${group}/`);
  },
});
