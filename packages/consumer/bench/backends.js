// The backends bench:rebalance and bench:scale compare, made the same way in the bench process and in its crash-member child.
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

/** The backend calls that write: what a rebalance costs the coordination service. */
const WRITE_METHODS = ['join', 'leave', 'writeRecord', 'claim', 'release'];

/**
 * Counts what `backend` costs its server, into `counters` (the bench's view; the backend is untouched):
 * `writes` (calls of WRITE_METHODS), `bytes` (the values written: records, claims, member entries) and `events`
 * (watch deliveries to this member's listeners). `timed(method, startedAt, endedAt, arg)`, when given, is told of
 * every connect, join and write once it settled (`arg`: its second argument, a claim's partition).
 */
function instrument(backend, counters, timed) {
  if (timed) {
    for (const method of ['connect', ...WRITE_METHODS]) {
      const original = backend[method].bind(backend);
      backend[method] = (...args) => {
        const started = performance.timeOrigin + performance.now();
        const end = () => timed(method, started, performance.timeOrigin + performance.now(), args[1]);
        const call = original(...args);
        call.then(end, end);
        return call;
      };
    }
  }
  counters.writes ??= 0;
  counters.bytes ??= 0;
  counters.events ??= 0;
  for (const method of WRITE_METHODS) {
    const original = backend[method].bind(backend);
    backend[method] = (...args) => {
      counters.writes++;
      if (method === 'writeRecord') counters.bytes += Buffer.byteLength(args[2]);
      else if (method === 'claim') counters.bytes += Buffer.byteLength(args[2]);
      else if (method === 'join') counters.bytes += Buffer.byteLength(JSON.stringify(args[1]));
      return original(...args);
    };
  }
  for (const method of ['watchMembers', 'watchRecord', 'watchClaim']) {
    const original = backend[method].bind(backend);
    backend[method] = (...args) => {
      const listener = args.at(-1);
      args[args.length - 1] = (...values) => {
        counters.events++;
        return listener(...values);
      };
      return original(...args);
    };
  }
  return backend;
}

module.exports = { makeBackend, instrument, SESSION_TIMEOUT_MS, WRITE_METHODS };
