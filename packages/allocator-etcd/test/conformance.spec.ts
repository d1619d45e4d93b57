// The backend conformance suite of @kiel/consumer, run against the shared etcd of the local stack. The fault cases
// act on a private etcd (the shared one is never frozen or stopped), and the authentication case on a second
// private etcd with authentication on.
import type { AllocatorBackend } from '@kiel/consumer';
import { runAllocatorBackendSuite } from '@kiel/consumer/testing';
import { TcpProxy } from '@kiel/test-kit';
import type { Etcd3 } from 'etcd3';
import { EtcdBackend } from '../src';
import { randomPrefix, rawClient, sharedHosts } from './helpers';
import { PrivateEtcd } from './private-etcd';

const prefix = randomPrefix();
// A second, independent client: it expires sessions the way etcd would, by revoking their lease.
const admin = rawClient(sharedHosts);
const faultsPrefix = randomPrefix();
const AUTH_PREFIX = 'kiel-conformance-auth/';
const APP = { user: 'kiel-conformance', password: 'app-secret' };
let faultsEtcd: PrivateEtcd;
let faultsRaw: Etcd3;
let authEtcd: PrivateEtcd;
const proxies = new Map<AllocatorBackend, TcpProxy>();

beforeAll(async () => {
  [faultsEtcd, authEtcd] = await Promise.all([PrivateEtcd.start(), PrivateEtcd.start()]);
  faultsRaw = rawClient(faultsEtcd.hosts);
  await authEtcd.enableAuth(APP, AUTH_PREFIX);
}, 60_000);

afterAll(async () => {
  await Promise.all([...proxies.values()].map((proxy) => proxy.close()));
  faultsRaw?.close();
  await Promise.all([faultsEtcd?.dispose(), authEtcd?.dispose()]);
  await admin.delete().prefix(prefix);
  admin.close();
}, 60_000);

/** The proxy a backend of `faults.partition.factory` talks through. */
function proxyOf(backend: AllocatorBackend): TcpProxy {
  const proxy = proxies.get(backend);
  if (!proxy) throw new Error('not a backend of faults.partition.factory');
  return proxy;
}

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
  auth: {
    factory: () => new EtcdBackend({ hosts: authEtcd.hosts, prefix: AUTH_PREFIX, ttl: 2, auth: APP }),
    unauthenticatedFactory: () => new EtcdBackend({ hosts: authEtcd.hosts, prefix: AUTH_PREFIX, ttl: 2 }),
  },
  faults: {
    // A 1 s operation timeout: no call may hang while etcd is frozen. The TTL is whole seconds.
    factory: ({ sessionTimeout, connectTimeout }) =>
      new EtcdBackend({
        hosts: faultsEtcd.hosts,
        prefix: faultsPrefix,
        ttl: sessionTimeout / 1000,
        connectTimeout,
        operationTimeout: 1_000,
      }),
    freeze: { pause: () => faultsEtcd.pause(), resume: () => faultsEtcd.resume() },
    restart: { stop: () => faultsEtcd.stop(), start: () => faultsEtcd.restart() },
    // A proxy that stops all traffic while etcd keeps running.
    partition: {
      factory: async ({ sessionTimeout, connectTimeout }) => {
        const proxy = await TcpProxy.start(faultsEtcd.port);
        const backend = new EtcdBackend({
          hosts: proxy.hosts,
          prefix: faultsPrefix,
          ttl: sessionTimeout / 1000,
          connectTimeout,
          operationTimeout: 1_000,
        });
        proxies.set(backend, proxy);
        return backend;
      },
      cut: (backend) => proxyOf(backend).freeze(),
      heal: (backend) => proxyOf(backend).thaw(),
    },
    ownerOf: async (location) => (await faultsRaw.get(location).exec()).kvs[0]?.lease ?? null,
    sessionExists: async (leaseId) => (await faultsRaw.leaseClient.leaseTimeToLive({ ID: leaseId })).TTL !== '-1',
    bounds: {
      // Keepalives go out every TTL/4 = 1 s; one unanswered within 750 ms is enough: about 1.75 s at most on a quiet
      // machine (2.7 s once on a loaded one). What must hold is that it is noticed before the 4 s TTL could run out.
      shortFreeze: {
        sessionTimeout: 4_000,
        connectTimeout: 6_000,
        disconnectedWithin: 3_500,
        callFailsWithin: 1_500,
      },
      // Contact is declared lost well before etcd could expire the lease (2 s after the last renewal at the
      // earliest), and the lease is given up once the whole TTL has passed without a renewal: etcd3's own lease
      // object would report it only after 2 x TTL.
      longFreeze: {
        sessionTimeout: 2_000,
        connectTimeout: 1_000,
        disconnectedWithin: 1_500,
        expiredNotBefore: 1_000,
        expiredWithin: 3_500,
        connectFailsWithin: 2_000,
        staleGoneWithin: 5_000,
      },
      restart: {
        sessionTimeout: 6_000,
        connectTimeout: 1_000,
        disconnectedWithin: 4_000,
        reconnectedWithin: 6_000,
        watchWithin: 6_000,
      },
    },
  },
});
