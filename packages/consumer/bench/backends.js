// The backends bench:rebalance compares, made the same way in the bench process and in its crash-member child.
'use strict';

const zkHosts = process.env.ZK_HOSTS ?? '127.0.0.1:2181';
const etcdHosts = process.env.ETCD_HOSTS ?? '127.0.0.1:2379';

/** ZooKeeper session timeout and etcd lease TTL of the bench, ms: what a crashed member's detection waits for. */
const SESSION_TIMEOUT_MS = { zk: 6_000, etcd: 5_000 };

/** A new, unconnected backend of `kind` (memory backends share one in-process store per `store`). */
function makeBackend(kind, store) {
  if (kind === 'memory') {
    const { MemoryBackend } = require('../dist');
    return new MemoryBackend({ store });
  }
  if (kind === 'zk') {
    const { ZooKeeperBackend } = require('@kiel/allocator-zk');
    return new ZooKeeperBackend({ hosts: zkHosts, sessionTimeout: SESSION_TIMEOUT_MS.zk });
  }
  if (kind === 'etcd') {
    const { EtcdBackend } = require('@kiel/allocator-etcd');
    return new EtcdBackend({ hosts: etcdHosts, ttl: SESSION_TIMEOUT_MS.etcd / 1000 });
  }
  throw new Error(`unknown backend ${kind}`);
}

module.exports = { makeBackend, SESSION_TIMEOUT_MS };
