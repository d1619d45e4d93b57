// GroupedConsumers with ZooKeeperBackend on real Kafka, under real faults of a private ZooKeeper (the shared one is
// never touched): a freeze (SIGSTOP) shorter and longer than the session timeout, a partition of one member longer
// than the session timeout while the others go on, a restart that keeps the data, and a member process killed with
// SIGKILL. Messages flow all the time; the ProcessingLog proves that nothing is lost, that no partition ever has two
// owners at once, and that duplicates come only after a lost member's last commit.
import path from 'node:path';
import type { AllocatorBackend } from '@kiel/consumer';
import { ZooKeeperBackend } from '../src';
import {
  ContinuousProducer,
  drainGroup,
  expectKilledMemberMoves,
  FaultGroup,
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

/** Members of one case: a fresh topic and root path, backends on `hosts` (the private ZooKeeper unless a proxy). */
async function setUp(options: { sessionTimeout?: number } = {}) {
  const topic = await t.create('zk-faults', PARTITIONS);
  const rootPath = randomRoot();
  roots.push(rootPath);
  let hosts = zk.hosts;
  const group = new FaultGroup(
    topic,
    PARTITIONS,
    () =>
      new ZooKeeperBackend({
        hosts,
        rootPath,
        sessionTimeout: options.sessionTimeout ?? SESSION_TIMEOUT,
        connectTimeout: 5_000,
        operationTimeout: 1_000,
      }),
  );
  const producer = new ContinuousProducer(topic, PARTITIONS, 12, 20);
  return {
    topic,
    rootPath,
    group,
    producer,
    /** Backends made after this call connect to `next`. */
    useHosts: (next: string) => (hosts = next),
  };
}

const sessionOf = (group: FaultGroup, name: string) => (group.members.get(name)!.backend as ZooKeeperBackend).sessionId;

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
    await producer.start();
    try {
      await group.add('a');
      await group.add('b');
      await group.stable();
      await sleep(300);
      const generation = group.generation;
      const ids = [...group.members.values()].map((m) => m.consumer.memberId);
      const sessions = ['a', 'b'].map((name) => sessionOf(group, name));
      const reports = ['a', 'b'].map((name) => backendEvents(group.members.get(name)!.backend));
      const frozenAt = wallClock();
      zkPaused = true;
      zk.pause();
      // Past the backend's own silence threshold (a third of the session timeout), about the fencing timeout.
      await sleep(1_500);
      zk.resume();
      zkPaused = false;
      await sleep(1_500);
      expect(group.isStable()).toBe(true);
      expect(group.generation).toBe(generation);
      expect([...group.members.values()].map((m) => m.consumer.memberId)).toEqual(ids);
      expect(['a', 'b'].map((name) => sessionOf(group, name))).toEqual(sessions);
      // The freeze was seen, and each member got its own session back.
      for (const seen of reports) {
        expect(seen.filter((e) => e.startsWith('disconnected')).length).toBeGreaterThan(0);
        expect(seen.at(-1)).toBe('connected:same-session');
        expect(seen).not.toContain('expired');
      }
      for (const name of ['a', 'b']) {
        expect(group.eventsOf(name, 'lost')).toEqual([]);
        expect(group.eventsOf(name, 'rebalance').filter((e) => e.at >= frozenAt)).toEqual([]);
        // A member may fence itself for a moment (its clock is stricter than the session), but never stays fenced.
        expect(group.eventsOf(name, 'unfenced').length).toBe(group.eventsOf(name, 'fenced').length);
      }
    } finally {
      await drainGroup(group, producer);
    }
    expect(producer.total).toBeGreaterThan(300);
    expect(group.log.lost(producer.produced)).toEqual([]);
    expect(group.log.duplicates()).toEqual([]);
    expect(group.log.overlaps()).toEqual([]);
    expect(group.unexpectedErrors()).toEqual([]);
  }, 60_000);

  it('a freeze longer than the session timeout: members fence before their claims can expire, then rejoin on new sessions, never two owners', async () => {
    const { group, producer } = await setUp();
    await producer.start();
    let generation = 0;
    let oldSessions: Array<string | undefined> = [];
    let newSessions: Array<string | undefined> = [];
    let reports: string[][] = [];
    let frozenAt = 0;
    let resumedAt = 0;
    /** When a member may trust its ownership again: rejoined as a new member, or unfenced on its old session. */
    const backAt = (name: string) =>
      [...group.eventsOf(name, 'rejoined'), ...group.eventsOf(name, 'unfenced')]
        .map((e) => e.at)
        .filter((at) => at > resumedAt)
        .sort((x, y) => x - y)[0];
    try {
      await group.add('a');
      await group.add('b');
      await group.stable();
      await sleep(300);
      generation = group.generation;
      oldSessions = ['a', 'b'].map((name) => sessionOf(group, name));
      reports = ['a', 'b'].map((name) => backendEvents(group.members.get(name)!.backend));
      frozenAt = wallClock();
      zkPaused = true;
      zk.pause();
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
      resumedAt = wallClock();
      zk.resume();
      zkPaused = false;
      await waitFor('every member to be back', () => backAt('a') !== undefined && backAt('b') !== undefined, 15_000);
      await waitFor('every partition owned again', () => group.isStable(), 15_000);
      newSessions = ['a', 'b'].map((name) => sessionOf(group, name));
      await sleep(500);
    } finally {
      await drainGroup(group, producer);
    }
    let rejoined = 0;
    for (const [i, name] of ['a', 'b'].entries()) {
      const member = group.members.get(name)!;
      const [fenced] = group.eventsOf(name, 'fenced');
      // Fenced while its session (and so its claims) was still certainly alive, and idle until it was back.
      expect(fenced!.margin).toBeGreaterThan(0);
      expect(fenced!.at).toBeLessThan(frozenAt + SESSION_TIMEOUT);
      expect(
        group.log.intervals.filter((i) => i.member === name && i.start > fenced!.at && i.start < backAt(name)!),
      ).toEqual([]);
      // After a whole session timeout of silence the backend counts the session lost on its own clock (it does not
      // race ZooKeeper's session tracker on resume): the member drops everything and rejoins on a new session.
      const lost = group.eventsOf(name, 'lost');
      expect(lost).toHaveLength(1);
      // Silence counts from the last answer, up to one heartbeat period (T/5) before the freeze.
      expect(lost[0]!.at).toBeGreaterThan(frozenAt + SESSION_TIMEOUT * 0.75);
      expect(reports[i]).toContain('expired');
      expect(member.memberIds).toHaveLength(2);
      expect(member.memberIds[1]).not.toBe(member.memberIds[0]);
      expect(newSessions[i]).not.toBe(oldSessions[i]);
      rejoined++;
    }
    // New members: the leader published a new allocation.
    expect(rejoined).toBe(2);
    expect(group.generation).toBeGreaterThan(generation);
    expect(group.log.lost(producer.produced)).toEqual([]);
    expect(group.describeOverlaps(frozenAt)).toEqual([]);
    expect(group.unexplainedDuplicates()).toEqual([]);
    expect(group.unexpectedErrors()).toEqual([]);
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
    await producer.start();
    let producedBefore = 0;
    try {
      await group.add('a');
      await group.add('b');
      await group.stable();
      await sleep(300);
      const reports = ['a', 'b'].map((name) => backendEvents(group.members.get(name)!.backend));
      zkStopped = true;
      zk.stop();
      await zk.start();
      zkStopped = false;
      producedBefore = producer.total;
      await waitFor(
        'contact again',
        () => [...group.members.values()].every((m) => m.backend.state === 'connected'),
        15_000,
      );
      await waitFor('a stable allocation again', () => group.isStable(), 15_000);
      // Messages produced after the restart are handled: consumption goes on.
      const handledBefore = group.log.count;
      await waitFor('consumption after the restart', () => group.log.count > handledBefore + 100, 10_000);
      // The restart was seen, and the sessions survived it (the server keeps them in its data, with a fresh timeout).
      for (const seen of reports) {
        expect(seen).toContain('disconnected');
        expect(seen).not.toContain('expired');
      }
    } finally {
      await drainGroup(group, producer);
    }
    expect(producer.total).toBeGreaterThan(producedBefore);
    expect(group.eventsOf('a', 'lost')).toEqual([]);
    expect(group.eventsOf('b', 'lost')).toEqual([]);
    expect(group.log.lost(producer.produced)).toEqual([]);
    expect(group.log.overlaps()).toEqual([]);
    expect(group.log.duplicates()).toEqual([]);
    expect(group.unexpectedErrors()).toEqual([]);
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
