// Stalled partitions and poison messages (issue 19): the options' checks, the pure parts (the marker, what a new owner
// inherits from it, the leader keeping a given-up partition away from its member), and a single-partition give-up in
// the coordination core on the memory backend. The multi-process proofs on real ZooKeeper and etcd are in the backend
// packages (stalls.spec.ts).
import { naive } from '@kiel/allocators';
import {
  PartitionAllocator,
  GroupedConsumer,
  MemoryBackend,
  MemoryStore,
  isKielError,
  parseMarker,
  type AllocationRecord,
  type KielError,
} from '../../src/internal';
import { keepAwayFromGivenUp } from '../../src/group/leader';
import { giveUpPeriod, inheritRange, lossesAt, resolvePoison, resolveStall } from '../../src/group/marker';
import { parseControl } from '../../src/group/records';
import { waitFor } from '@kiel/test-kit';

describe('GroupedConsumer options of stalls and poison', () => {
  const base = { brokers: ['127.0.0.1:9092'], group: 'g', backend: new MemoryBackend({ store: new MemoryStore() }) };
  const thrownBy = (options: object): unknown => {
    try {
      new GroupedConsumer({ ...base, ...options } as never);
    } catch (e) {
      return e;
    }
    return undefined;
  };
  it.each([
    ['stallTimeout', { stallTimeout: 0 }],
    ['stallTimeout', { stallTimeout: 99 }],
    ['stallTimeout', { stallTimeout: 1.5e3 + 0.5 }],
    ['stallTimeout', { stallTimeout: '5s' }],
    ['stallAction', { stallTimeout: 5_000, stallAction: 'evict' }],
    ['stallAction', { stallAction: 'handoff' }],
    ['poison', { poison: 3 }],
    ['poison.onPoison', { poison: { maxAttempts: 3 } }],
    ['poison.maxAttempts', { poison: { maxAttempts: 0, onPoison: () => undefined } }],
    ['poison.maxAttempts', { poison: { maxAttempts: 2.5, onPoison: () => undefined } }],
  ])('refuses %s in %j with ERR_INVALID_CONFIG naming it', (option, options) => {
    const thrown = thrownBy(options);
    expect(isKielError(thrown, 'ERR_INVALID_CONFIG')).toBe(true);
    expect((thrown as KielError).option).toBe(option);
  });
  it('accepts the documented forms, and both are off by default', () => {
    expect(thrownBy({ stallTimeout: 30_000 })).toBeUndefined();
    expect(thrownBy({ stallTimeout: 30_000, stallAction: 'handoff', poison: { onPoison: () => undefined } })).toBe(
      undefined,
    );
    expect(resolveStall(undefined, undefined)).toBeUndefined();
    expect(resolveStall(1_000, undefined)).toEqual({ timeout: 1_000, action: 'report' });
    expect(resolvePoison(undefined)).toBeUndefined();
    expect(resolvePoison({ onPoison: () => undefined })?.maxAttempts).toBe(3);
    expect(giveUpPeriod(2_000)).toBe(30_000);
    expect(giveUpPeriod(60_000)).toBe(120_000);
  });
});

describe('the in-flight marker', () => {
  it('parses what a member writes and refuses malformed markers naming where they are', () => {
    const text = JSON.stringify({
      member: 'm',
      from: 5,
      to: 9,
      losses: 1,
      stalled: { offset: 7, since: 1, member: 'm' },
    });
    expect(parseMarker(text, 'here')).toMatchObject({ from: 5, to: 9, losses: 1 });
    for (const bad of ['{', '[]', '{"from":1,"to":2}', '{"member":"m","from":1}', '{"member":"m","from":3,"to":2}']) {
      let thrown: unknown;
      try {
        parseMarker(bad, 'groups/g/markers/t:0');
      } catch (e) {
        thrown = e;
      }
      expect(isKielError(thrown, 'ERR_MALFORMED_RECORD')).toBe(true);
      expect((thrown as KielError).location).toBe('groups/g/markers/t:0');
    }
  });

  it('a marker left by a session that ended counts one more loss; a released one does not', () => {
    expect(inheritRange({ member: 'a', from: 10, to: 19, losses: 0 }, 12)).toEqual({ from: 12, to: 19, losses: 1 });
    expect(inheritRange({ member: 'b', from: 14, to: 14, losses: 1 }, 12)).toEqual({ from: 14, to: 14, losses: 2 });
    expect(inheritRange({ member: 'b', from: 14, to: 19, losses: 2, released: true }, 15)).toEqual({
      from: 15,
      to: 19,
      losses: 2,
    });
    // Released with nothing lost: nothing to inherit.
    expect(inheritRange({ member: 'b', from: 14, to: 19, losses: 0, released: true }, 0)).toBeUndefined();
    // Committed past the range: the crash came after it was handled.
    expect(inheritRange({ member: 'a', from: 10, to: 19, losses: 4 }, 20)).toBeUndefined();
    // Only a stall report, or nothing.
    expect(inheritRange({ member: 'a', stalled: { offset: 3, since: 1, member: 'a' } }, 0)).toBeUndefined();
    expect(inheritRange(null, 0)).toBeUndefined();
  });

  it('only offsets inside the inherited range carry its losses', () => {
    const inherited = { from: 12, to: 14, losses: 2 };
    expect([11, 12, 14, 15].map((o) => lossesAt(inherited, o))).toEqual([0, 2, 2, 0]);
    expect(lossesAt(undefined, 12)).toBe(0);
  });
});

describe('keepAwayFromGivenUp', () => {
  const assignment = { a: { t: [0, 1, 2] }, b: { t: [3, 4] }, c: { t: [5] } };
  it('moves a partition given up to the live member with the fewest partitions, only while the notice lasts', () => {
    const givenUp = { 't:1': { member: 'a', until: 2_000 } };
    expect(keepAwayFromGivenUp(assignment, givenUp, ['a', 'b', 'c'], 1_000)).toEqual({
      a: { t: [0, 2] },
      b: { t: [3, 4] },
      c: { t: [1, 5] },
    });
    expect(keepAwayFromGivenUp(assignment, givenUp, ['a', 'b', 'c'], 2_000)).toBe(assignment);
  });
  it('leaves it where it is when nobody else is live, or it is not with the member that gave it up', () => {
    expect(keepAwayFromGivenUp({ a: { t: [0] } }, { 't:0': { member: 'a', until: 9 } }, ['a'], 1)).toEqual({
      a: { t: [0] },
    });
    expect(keepAwayFromGivenUp(assignment, { 't:3': { member: 'a', until: 9 } }, ['a', 'b', 'c'], 1)).toBe(assignment);
  });
  it('the control record carries the notices, and a malformed one is refused', () => {
    expect(parseControl('{"givenUp":{"t:1":{"member":"a","until":5}}}', 'c').givenUp).toEqual({
      't:1': { member: 'a', until: 5 },
    });
    expect(() => parseControl('{"givenUp":{"t:1":{"until":5}}}', 'c')).toThrow(/givenUp/);
  });
});

describe('a single partition given up, in the coordination core (memory backend)', () => {
  const partitions = Array.from({ length: 6 }, (_, i) => `t:${i}`);
  const store = new MemoryStore();
  const group = `stall-${process.pid}`;
  const coordinators: PartitionAllocator[] = [];
  const fetching = new Map<PartitionAllocator, Set<string>>();
  const revoked = new Map<PartitionAllocator, string[]>();

  async function member(): Promise<PartitionAllocator> {
    const backend = new MemoryBackend({ store, sessionTimeout: 2_000 });
    const mine = new Set<string>();
    const gone: string[] = [];
    const id = ({ topic, partition }: { topic: string; partition: number }) => `${topic}:${partition}`;
    const coordinator: PartitionAllocator = new PartitionAllocator({
      backend,
      group,
      strategy: naive,
      strategyName: 'naive',
      fencingTimeout: undefined,
      rejoin: false,
      hooks: {
        assign: async (ps) => {
          for (const p of ps) if (coordinator.isOwned(id(p))) mine.add(id(p));
        },
        revoke: async (ps) => {
          for (const p of ps) {
            mine.delete(id(p));
            gone.push(id(p));
          }
        },
        drop: (ps) => ps.forEach((p) => mine.delete(id(p))),
        fence: () => undefined,
      },
    });
    fetching.set(coordinator, mine);
    revoked.set(coordinator, gone);
    await coordinator.start();
    coordinators.push(coordinator);
    return coordinator;
  }

  afterAll(() => Promise.all(coordinators.map((c) => c.stop())));

  it('only that partition moves, to another member, and does not come back while given up', async () => {
    const [a, b, c] = [await member(), await member(), await member()];
    await a.addPartitions(partitions);
    const settled = () =>
      [a, b, c].every((m) => m.currentGeneration > 0 && m.currentGeneration === a.currentGeneration) &&
      [a, b, c].reduce((n, m) => n + fetching.get(m)!.size, 0) === partitions.length;
    await waitFor('settled', settled, 3_000);
    const before = new Map([a, b, c].map((m) => [m, [...fetching.get(m)!].sort()]));
    const given = before.get(a)![0]!;
    a.giveUp(given, 60_000);
    await waitFor(
      'another member fetches it',
      () => [b, c].some((m) => fetching.get(m)!.has(given)) && settled(),
      3_000,
    );
    expect(revoked.get(a)).toEqual([given]);
    expect([...fetching.get(a)!].sort()).toEqual(before.get(a)!.filter((p) => p !== given));
    for (const m of [b, c]) expect(before.get(m)!.every((p) => fetching.get(m)!.has(p))).toBe(true);
    const observer = new MemoryBackend({ store });
    await observer.connect();
    const record = JSON.parse((await observer.readRecord(group, 'allocation'))!.value) as AllocationRecord;
    const control = parseControl((await observer.readRecord(group, 'control'))!.value, 'control');
    await observer.close();
    expect(Object.keys(control.givenUp ?? {})).toEqual([given]);
    expect(
      Object.entries(record.assignment[a.memberId]!).flatMap(([t, ps]) => ps.map((p) => `${t}:${p}`)),
    ).not.toContain(given);
    // A later rebalance (a member leaves) keeps it away from a.
    await c.stop();
    coordinators.splice(coordinators.indexOf(c), 1);
    await waitFor(
      'a and b own everything',
      () => fetching.get(a)!.size + fetching.get(b)!.size === partitions.length,
      3_000,
    );
    expect(fetching.get(a)!.has(given)).toBe(false);
  });
});
