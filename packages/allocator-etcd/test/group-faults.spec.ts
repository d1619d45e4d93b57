// GroupedConsumers with EtcdBackend on real Kafka, under real faults of a private etcd (the shared one is never
// touched): a freeze shorter and longer than the lease TTL, a restart, a compaction while a member's watches are
// cut off by a TCP proxy, and a member process killed with SIGKILL. Messages flow all the time; the ProcessingLog
// proves that nothing is lost, that no partition ever has two owners at once, and that duplicates come only
// after a lost member's last commit. The freezes, the restart and the SIGKILL case are @kiel/test-kit's shared
// scenarios; the hooks here add what only etcd leases promise.
import path from 'node:path';
import type { Etcd3 } from 'etcd3';
import { EtcdBackend } from '../src';
import {
  drainGroup,
  expectKilledMemberMoves,
  expectLongFreezeRejoins,
  expectRestartRecovers,
  expectShortFreezeUnnoticed,
  newFaultCase,
  type ServerFaults,
  sleep,
  TcpProxy,
  topics,
  waitFor,
} from '@kiel/test-kit';
import { randomPrefix, rawClient } from './helpers';
import { PrivateEtcd } from './private-etcd';

const PARTITIONS = 6;
/** Lease TTL of the members, s: the smallest etcd grants, to keep every case short. */
const TTL = 2;

const t = topics();
let etcd: PrivateEtcd;
let raw: Etcd3;
let etcdStopped = false;
const prefixes: string[] = [];

beforeAll(async () => {
  etcd = await PrivateEtcd.start();
  raw = rawClient(etcd.hosts);
}, 60_000);

afterEach(async () => {
  // A failed case must not leave the private etcd frozen or down for the next one.
  await etcd.resume();
  if (etcdStopped) await etcd.restart();
  etcdStopped = false;
}, 30_000);

afterAll(async () => {
  for (const prefix of prefixes)
    await raw
      .delete()
      .prefix(prefix)
      .catch(() => undefined);
  raw?.close();
  await etcd?.dispose();
  await t.cleanup();
}, 60_000);

/** Members of one case: a fresh topic and key prefix, backends on the private etcd (or a proxy, `useHosts`). */
async function setUp(options: { ttl?: number } = {}) {
  const prefix = randomPrefix();
  prefixes.push(prefix);
  const faultCase = await newFaultCase({
    topics: t,
    topicPrefix: 'etcd-faults',
    partitions: PARTITIONS,
    hosts: etcd.hosts,
    makeBackend: (hosts) =>
      new EtcdBackend({ hosts, prefix, ttl: options.ttl ?? TTL, connectTimeout: 1_000, operationTimeout: 1_000 }),
  });
  return { prefix, ...faultCase };
}

/** The private etcd's faults for the shared scenarios; what a failed case leaves, afterEach undoes. */
const etcdFaults: ServerFaults = {
  freeze: () => etcd.pause(),
  resume: () => etcd.resume(),
  restart: async () => {
    etcdStopped = true;
    await etcd.stop();
    await etcd.restart();
    etcdStopped = false;
  },
};

describe('GroupedConsumer with EtcdBackend under faults (private etcd, real Kafka)', () => {
  it('a freeze shorter than the TTL: no rebalance, no lost session, nothing lost or duplicated', async () => {
    const { group, producer } = await setUp();
    await expectShortFreezeUnnoticed({ group, producer, server: etcdFaults, frozenMs: 800, settleMs: 1_200 });
  }, 60_000);

  it('a freeze longer than the TTL: members fence before their leases expire, rejoin as new members, never two owners', async () => {
    const { group, producer } = await setUp();
    let generation = 0;
    let oldLeases: string[] = [];
    await expectLongFreezeRejoins({
      group,
      producer,
      server: etcdFaults,
      before: () => {
        generation = group.generation;
        oldLeases = [...group.members.values()].map((m) => (m.backend as EtcdBackend).sessionId!);
      },
      whileFrozen: async () => {
        await waitFor(
          'every member to lose its lease',
          () => group.eventsOf('a', 'lost').length > 0 && group.eventsOf('b', 'lost').length > 0,
          8_000,
        );
        await sleep(500);
      },
      untilBack: async () => {
        await waitFor(
          'every member to rejoin',
          () => group.eventsOf('a', 'rejoined').length > 0 && group.eventsOf('b', 'rejoined').length > 0,
          15_000,
        );
        await waitFor(
          'a new generation owning every partition',
          () => group.isStable() && group.generation > generation,
          15_000,
        );
      },
      expectMember: (name) => {
        const [fenced] = group.eventsOf(name, 'fenced');
        const [lost] = group.eventsOf(name, 'lost');
        // Fenced first, while its lease was still certainly alive; only then was the lease given up.
        expect(fenced!.at).toBeLessThan(lost!.at);
      },
      expectGroup: async () => {
        // The old leases are gone on the server, and every claim bound to them.
        for (const lease of oldLeases) {
          expect((await raw.leaseClient.leaseTimeToLive({ ID: lease })).TTL).toBe('-1');
        }
      },
    });
  }, 60_000);

  it('an etcd restart (data kept): the group recovers by itself and keeps consuming', async () => {
    const { group, producer } = await setUp();
    await expectRestartRecovers({ group, producer, server: etcdFaults });
  }, 60_000);

  it('a compaction while a member’s watches are cut off: it reads again, hands off, and the group keeps consuming', async () => {
    // A longer lease here, so that the member behind the proxy comes back on its own lease and watches rather
    // than rejoining (which would read everything afresh anyway).
    const { group, producer, useHosts } = await setUp({ ttl: 4 });
    const proxy = await TcpProxy.start(etcd.port);
    await producer.start();
    let generation = 0;
    let cOwned = 0;
    try {
      await group.add('a');
      useHosts(proxy.hosts);
      await group.add('b');
      useHosts(etcd.hosts);
      await group.stable();
      await sleep(300);
      generation = group.generation;
      proxy.cut();
      // While b sees nothing: c joins, the leader publishes a new allocation, and the history is compacted away.
      await group.add('c');
      await waitFor(
        'the leader to publish a new allocation',
        () => group.members.get('a')!.consumer.generation > generation,
        5_000,
      );
      const { header } = await raw.get('anything').exec();
      await raw.kv.compact({ revision: header.revision, physical: true });
      // b missed all of it: its watches must resume from a revision that is gone.
      expect(group.members.get('b')!.consumer.generation).toBe(generation);
      proxy.restore();
      await waitFor('b to follow the new allocation, and c to own its share', () => group.isStable(), 15_000);
      cOwned = group.members.get('c')!.consumer.assignment.length;
      await sleep(500);
    } finally {
      await drainGroup(group, producer);
      await proxy.close();
    }
    expect(cOwned).toBeGreaterThan(0);
    // b came back on its own lease: its watches resumed past the compaction rather than a rejoin reading afresh.
    expect(group.eventsOf('b', 'lost')).toEqual([]);
    expect(group.log.lost(producer.produced)).toEqual([]);
    expect(group.log.duplicates()).toEqual([]);
    expect(group.log.overlaps()).toEqual([]);
    expect(group.unexpectedErrors()).toEqual([]);
  }, 60_000);

  it('a member process killed with SIGKILL: its partitions move after the TTL, the others keep flowing', async () => {
    const { prefix, group, producer } = await setUp();
    await expectKilledMemberMoves({
      group,
      producer,
      partitions: PARTITIONS,
      fixture: path.join(__dirname, 'fixtures/group-member-process.js'),
      child: { hosts: etcd.hosts, namespace: prefix, sessionTimeout: TTL * 1000 },
      sessionMs: TTL * 1000,
    });
  }, 60_000);
});
