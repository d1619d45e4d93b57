// GroupedConsumers with ZooKeeperBackend on real Kafka, under real faults of a private ZooKeeper (the shared one is
// never touched): a freeze (SIGSTOP) shorter and longer than the session timeout, a partition of one member longer
// than the session timeout while the others go on, a restart that keeps the data, and a member process killed with
// SIGKILL. Messages flow all the time; the ProcessingLog proves that nothing is lost, that no partition ever has two
// owners at once, and that duplicates come only after a lost member's last commit. The freezes, the restart and the
// SIGKILL case are @kiel/test-kit's shared scenarios; the hooks here add what only ZooKeeper sessions promise.
import path from 'node:path';
import type { AllocatorBackend } from '@kiel/consumer';
import { ZooKeeperBackend } from '../src';
import {
  drainGroup,
  expectKilledMemberMoves,
  expectLongFreezeRejoins,
  expectRestartRecovers,
  expectShortFreezeUnnoticed,
  type FaultGroup,
  newFaultCase,
  type ServerFaults,
  sleep,
  topics,
  waitFor,
  wallClock,
} from '@kiel/test-kit';
import { ZooKeeperProxy, PrivateZooKeeper, randomRoot, removeTree } from './helpers';

const PARTITIONS = 6;
/** Session timeout of the members, ms: small, to keep every case short (the server grants 1 s to 10 s). */
const SESSION_TIMEOUT = 3_000;

const t = topics();
const zk = new PrivateZooKeeper();
let zkPaused = false;
let zkStopped = false;
const roots: string[] = [];
const proxies: ZooKeeperProxy[] = [];

beforeAll(async () => {
  await zk.start();
}, 60_000);

afterEach(async () => {
  // A failed case must not leave the private ZooKeeper frozen or down for the next one.
  if (zkPaused) zk.resume();
  if (zkStopped) await zk.start();
  zkPaused = false;
  zkStopped = false;
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
}, 60_000);

afterAll(async () => {
  for (const root of roots) await removeTree(root, zk.hosts).catch(() => undefined);
  zk.destroy();
  await t.cleanup();
}, 60_000);

/** Members of one case: a fresh topic and root path, backends on the private ZooKeeper (or a proxy, `useHosts`). */
async function setUp(options: { sessionTimeout?: number } = {}) {
  const rootPath = randomRoot();
  roots.push(rootPath);
  const faultCase = await newFaultCase({
    topics: t,
    topicPrefix: 'zk-faults',
    partitions: PARTITIONS,
    hosts: zk.hosts,
    makeBackend: (hosts) =>
      new ZooKeeperBackend({
        hosts,
        rootPath,
        sessionTimeout: options.sessionTimeout ?? SESSION_TIMEOUT,
        connectTimeout: 5_000,
        operationTimeout: 1_000,
      }),
  });
  return { rootPath, ...faultCase };
}

/** The session ids of members a and b. */
const sessionsOf = (group: FaultGroup) =>
  ['a', 'b'].map((name) => (group.members.get(name)!.backend as ZooKeeperBackend).sessionId);

/** The private ZooKeeper's faults for the shared scenarios; what a failed case leaves, afterEach undoes. */
const zkFaults: ServerFaults = {
  freeze: () => {
    zkPaused = true;
    zk.pause();
  },
  resume: () => {
    zk.resume();
    zkPaused = false;
  },
  restart: async () => {
    zkStopped = true;
    zk.stop();
    await zk.start();
    zkStopped = false;
  },
};

/** The session events a backend reports from now on, as `disconnected`, `connected:<same|new>-session`, `expired`. */
function backendEvents(backend: AllocatorBackend): string[] {
  const seen: string[] = [];
  backend.on('disconnected', () => seen.push('disconnected'));
  backend.on('connected', ({ newSession }) => seen.push(`connected:${newSession ? 'new' : 'same'}-session`));
  backend.on('expired', () => seen.push('expired'));
  return seen;
}

describe('GroupedConsumer with ZooKeeperBackend under faults (private ZooKeeper, real Kafka)', () => {
  it('a freeze shorter than the session timeout: no rebalance, the same sessions, nothing lost or duplicated', async () => {
    const { group, producer } = await setUp();
    await expectShortFreezeUnnoticed({
      group,
      producer,
      server: zkFaults,
      // Past the backend's own silence threshold (a third of the session timeout), about the fencing timeout.
      frozenMs: 1_500,
      settleMs: 1_500,
      watch: () => {
        const sessions = sessionsOf(group);
        const reports = ['a', 'b'].map((name) => backendEvents(group.members.get(name)!.backend));
        return (frozenAt) => {
          expect(sessionsOf(group)).toEqual(sessions);
          // The freeze was seen, and each member got its own session back.
          for (const seen of reports) {
            expect(seen.filter((e) => e.startsWith('disconnected')).length).toBeGreaterThan(0);
            expect(seen.at(-1)).toBe('connected:same-session');
            expect(seen).not.toContain('expired');
          }
          for (const name of ['a', 'b']) {
            expect(group.eventsOf(name, 'rebalance').filter((e) => e.at >= frozenAt)).toEqual([]);
          }
        };
      },
    });
  }, 60_000);

  it('a freeze longer than the session timeout: members fence before their claims can expire, then rejoin on new sessions, never two owners', async () => {
    const { group, producer } = await setUp();
    let oldSessions: Array<string | undefined> = [];
    let newSessions: Array<string | undefined> = [];
    let reports: string[][] = [];
    let frozenAt = 0;
    let resumedAt = 0;
    let rejoined = 0;
    /** When a member may trust its ownership again: rejoined as a new member, or unfenced on its old session. */
    const backAt = (name: string) =>
      [...group.eventsOf(name, 'rejoined'), ...group.eventsOf(name, 'unfenced')]
        .map((e) => e.at)
        .filter((at) => at > resumedAt)
        .sort((x, y) => x - y)[0];
    await expectLongFreezeRejoins({
      group,
      producer,
      server: zkFaults,
      before: () => {
        oldSessions = sessionsOf(group);
        reports = ['a', 'b'].map((name) => backendEvents(group.members.get(name)!.backend));
      },
      whileFrozen: async (at) => {
        frozenAt = at;
        await waitFor(
          'every member to fence itself',
          () => group.eventsOf('a', 'fenced').length > 0 && group.eventsOf('b', 'fenced').length > 0,
          SESSION_TIMEOUT,
        );
        await sleep(SESSION_TIMEOUT + 1_000 - (wallClock() - frozenAt));
        // Nothing can tell a client while the server is frozen: each backend noticed the silence, then counted its
        // session lost on its own clock after a whole session timeout.
        expect(reports).toEqual([
          ['disconnected', 'expired'],
          ['disconnected', 'expired'],
        ]);
      },
      untilBack: async (at) => {
        resumedAt = at;
        await waitFor('every member to be back', () => backAt('a') !== undefined && backAt('b') !== undefined, 15_000);
        await waitFor('every partition owned again', () => group.isStable(), 15_000);
        newSessions = sessionsOf(group);
      },
      expectMember: (name, index) => {
        const [fenced] = group.eventsOf(name, 'fenced');
        // Fenced while its session (and so its claims) was still certainly alive, and idle until it was back.
        expect(fenced!.at).toBeLessThan(frozenAt + SESSION_TIMEOUT);
        expect(
          group.log.intervals.filter((i) => i.member === name && i.start > fenced!.at && i.start < backAt(name)!),
        ).toEqual([]);
        // After a whole session timeout of silence the backend counts the session lost on its own clock (it does
        // not race ZooKeeper's session tracker on resume): the member drops everything and rejoins on a new session.
        const lost = group.eventsOf(name, 'lost');
        expect(lost).toHaveLength(1);
        // Silence counts from the last answer, up to one heartbeat period (T/5) before the freeze.
        expect(lost[0]!.at).toBeGreaterThan(frozenAt + SESSION_TIMEOUT * 0.75);
        expect(reports[index]).toContain('expired');
        expect(newSessions[index]).not.toBe(oldSessions[index]);
        rejoined++;
      },
      expectGroup: (generation) => {
        // New members: the leader published a new allocation.
        expect(rejoined).toBe(2);
        expect(group.generation).toBeGreaterThan(generation);
      },
    });
  }, 60_000);

  it('one member cut off from ZooKeeper past the session timeout: it fences, the others take its partitions after expiry, never two owners', async () => {
    const { group, producer, useHosts } = await setUp();
    const proxy = await ZooKeeperProxy.start(zk.port);
    proxies.push(proxy);
    await producer.start();
    let cutAt = 0;
    let bOwned: string[] = [];
    try {
      await group.add('a');
      useHosts(proxy.hosts);
      await group.add('b');
      useHosts(zk.hosts);
      await group.stable();
      await sleep(300);
      bOwned = group.members.get('b')!.consumer.assignment;
      cutAt = wallClock();
      // b still reaches Kafka, but nothing of its ZooKeeper traffic passes: the server expires its session.
      proxy.freeze();
      await waitFor(
        'a to own every partition',
        () => group.members.get('a')!.consumer.assignment.length === PARTITIONS,
        3 * SESSION_TIMEOUT,
      );
      await sleep(500);
      proxy.thaw();
      await waitFor('b to rejoin', () => group.eventsOf('b', 'rejoined').length > 0, 15_000);
      await waitFor('both members to own partitions again', () => group.isStable(), 15_000);
      await sleep(500);
    } finally {
      await drainGroup(group, producer);
    }
    expect(bOwned.length).toBeGreaterThan(0);
    const [fenced] = group.eventsOf('b', 'fenced');
    expect(fenced!.margin).toBeGreaterThan(0);
    // b fenced itself before its session could end, and handled nothing more until it had rejoined.
    const [rejoined] = group.eventsOf('b', 'rejoined');
    expect(fenced!.at).toBeLessThan(cutAt + SESSION_TIMEOUT);
    expect(
      group.log.intervals.filter((i) => i.member === 'b' && i.start > fenced!.at && i.start < rejoined!.at),
    ).toEqual([]);
    // a took b's partitions only once the server had ended b's session (its last ping was at most ~600 ms before
    // the cut: the backend's heartbeat period is a fifth of the session timeout).
    const takenOver = bOwned.map((id) => Number(id.split(':').pop()));
    const aFirst = Math.min(
      ...group.log.intervals
        .filter((i) => i.member === 'a' && takenOver.includes(i.partition) && i.start > cutAt)
        .map((i) => i.start),
    );
    expect(aFirst).toBeGreaterThan(fenced!.at);
    expect(aFirst - cutAt).toBeGreaterThan(SESSION_TIMEOUT - 1_000);
    expect(group.eventsOf('a', 'lost')).toEqual([]);
    expect(group.eventsOf('b', 'lost').length).toBe(1);
    expect(group.log.lost(producer.produced)).toEqual([]);
    expect(group.describeOverlaps(cutAt)).toEqual([]);
    expect(group.unexplainedDuplicates()).toEqual([]);
    expect(group.unexpectedErrors()).toEqual([]);
  }, 60_000);

  it('a ZooKeeper restart that keeps the data: the group recovers by itself and keeps consuming', async () => {
    const { group, producer } = await setUp({ sessionTimeout: 6_000 });
    await expectRestartRecovers({
      group,
      producer,
      server: zkFaults,
      watch: () => {
        const reports = ['a', 'b'].map((name) => backendEvents(group.members.get(name)!.backend));
        return () => {
          // The restart was seen, and the sessions survived it (the server keeps them in its data, with a fresh
          // timeout).
          for (const seen of reports) {
            expect(seen).toContain('disconnected');
            expect(seen).not.toContain('expired');
          }
        };
      },
      expectGroup: () => {
        expect(group.eventsOf('a', 'lost')).toEqual([]);
        expect(group.eventsOf('b', 'lost')).toEqual([]);
        expect(group.log.duplicates()).toEqual([]);
      },
    });
  }, 60_000);

  it('a member process killed with SIGKILL: its partitions move after the session timeout, the others keep flowing', async () => {
    const { rootPath, group, producer } = await setUp();
    await expectKilledMemberMoves({
      group,
      producer,
      partitions: PARTITIONS,
      fixture: path.join(__dirname, 'fixtures/group-member-process.js'),
      child: { hosts: zk.hosts, namespace: rootPath, sessionTimeout: SESSION_TIMEOUT },
      sessionMs: SESSION_TIMEOUT,
    });
  }, 60_000);
});
