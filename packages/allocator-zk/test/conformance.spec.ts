// The backend conformance suite of @kiel/consumer, run against the shared ZooKeeper of the local stack. Each
// backend talks through its own proxy, which is how the expiry cases expire a session for real. The fault cases
// act on a private ZooKeeper (its own port and state directory; the shared one is never frozen or stopped), and
// the authentication case on a root of the shared one whose nodes carry a digest ACL.
import type { AllocatorBackend } from '@kiel/consumer';
import { runAllocatorBackendSuite } from '@kiel/consumer/testing';
import * as zookeeper from 'node-zookeeper-client';
import { ZooKeeperBackend } from '../src';
import {
  closeRaw,
  PrivateZooKeeper,
  randomRoot,
  rawClient,
  removeTree,
  SessionExpirer,
  zkCall,
  ZK_HOSTS,
  ZooKeeperProxy,
} from './helpers';

const root = randomRoot();
const authRoot = randomRoot();
const CREDENTIALS = 'kiel-conformance:s3cret';
const sessions = new SessionExpirer();
const privateZk = new PrivateZooKeeper();
const proxies = new Map<AllocatorBackend, ZooKeeperProxy>();

beforeAll(async () => {
  await privateZk.start();
}, 60_000);

afterAll(async () => {
  await Promise.all([...proxies.values()].map((proxy) => proxy.close()));
  privateZk.destroy();
  await sessions.close();
  await removeTree(root);
  await removeTree(authRoot, undefined, CREDENTIALS);
});

/** The proxy a backend of `faults.partition.factory` talks through. */
function proxyOf(backend: AllocatorBackend): ZooKeeperProxy {
  const proxy = proxies.get(backend);
  if (!proxy) throw new Error('not a backend of faults.partition.factory');
  return proxy;
}

runAllocatorBackendSuite({
  name: 'zookeeper',
  runner: { describe, it, expect, afterEach },
  factory: () =>
    sessions.backend({ rootPath: root, sessionTimeout: 4000, operationTimeout: 3000, connectTimeout: 5000 }),
  expireSession: (backend) => sessions.expire(backend),
  cleanupGroup: (group) => removeTree(`${root}/groups/${group}`),
  timeouts: { expiry: 15_000 },
  auth: {
    factory: () =>
      new ZooKeeperBackend({ hosts: ZK_HOSTS, rootPath: authRoot, auth: CREDENTIALS, sessionTimeout: 4000 }),
    unauthenticatedFactory: () => new ZooKeeperBackend({ hosts: ZK_HOSTS, rootPath: authRoot, sessionTimeout: 4000 }),
  },
  faults: {
    // A 2 s operation timeout: the call made during the short freeze must fail while the session can still be saved.
    factory: ({ sessionTimeout, connectTimeout }) =>
      new ZooKeeperBackend({
        hosts: privateZk.hosts,
        rootPath: '/kiel',
        sessionTimeout,
        connectTimeout,
        operationTimeout: 2000,
      }),
    freeze: {
      pause: async () => privateZk.pause(),
      resume: async () => privateZk.resume(),
    },
    restart: {
      stop: async () => privateZk.stop(),
      start: () => privateZk.start(),
    },
    // A proxy that stops all traffic while the server keeps running.
    partition: {
      factory: async ({ sessionTimeout, connectTimeout }) => {
        const proxy = await ZooKeeperProxy.start(privateZk.port);
        const backend = new ZooKeeperBackend({
          hosts: proxy.hosts,
          rootPath: '/kiel',
          sessionTimeout,
          connectTimeout,
          operationTimeout: 2000,
        });
        proxies.set(backend, proxy);
        return backend;
      },
      cut: (backend) => proxyOf(backend).freeze(),
      heal: (backend) => proxyOf(backend).thaw(),
    },
    ownerOf: async (location) => {
      const raw = await rawClient(privateZk.hosts);
      try {
        const stat = await zkCall<zookeeper.Stat | null>((cb) => raw.exists(location, cb));
        return stat ? `0x${stat.ephemeralOwner.toString('hex')}` : null;
      } finally {
        await closeRaw(raw);
      }
    },
    bounds: {
      shortFreeze: {
        // The backend reports `disconnected` after a third of the session timeout without an answer.
        silenceBeforeDisconnected: 2000,
        disconnectedReason: /no answer from ZooKeeper/,
        callFailsWithin: 2500,
      },
    },
  },
});
