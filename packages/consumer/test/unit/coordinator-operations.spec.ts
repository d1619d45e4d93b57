// Restarts and deploys (issue 19) in the coordination core, on the memory backend: stable names (instanceId), the
// delayed rebalance, graceful leaves with and without `restarting`, freezing and throttled moves. The multi-process
// proofs on real ZooKeeper and etcd are in the backend packages (operations.spec.ts).
import { naive, type Assignment } from '@kiel/allocators';
import {
  PartitionAllocator,
  GroupedConsumer,
  formatAllocation,
  parseAllocation,
  MemoryBackend,
  MemoryStore,
  freezeGroup,
  groupControl,
  isKielError,
  unfreezeGroup,
  type AllocationRecord,
  type KielError,
} from '../../src/internal';
import { throttleMoves } from '../../src/group/leader';
import { sleep, waitFor } from '@kiel/test-kit';

const TOPIC = 'ops';
const PARTITIONS = Array.from({ length: 12 }, (_, i) => `${TOPIC}:${i}`);

interface Options {
  instanceId?: string;
  rebalanceDelay?: number;
  initialRebalanceDelay?: number;
  maxMovesPerRebalance?: number;
  sessionTimeout?: number;
}

interface Member {
  readonly coordinator: PartitionAllocator;
  readonly backend: MemoryBackend;
  readonly fetching: Set<string>;
  /** `revoke t:p` and `drop t:p`: every partition this member stopped fetching. */
  readonly stopped: string[];
  readonly errors: KielError[];
}

let groups = 0;

class Group {
  readonly store = new MemoryStore();
  readonly name = `ops-${process.pid}-${++groups}`;
  readonly observer = new MemoryBackend({ store: this.store });
  readonly members: Member[] = [];

  async member(options: Options = {}): Promise<Member> {
    if (this.observer.state === 'idle') await this.observer.connect();
    const backend = new MemoryBackend({ store: this.store, sessionTimeout: options.sessionTimeout ?? 1_000 });
    const fetching = new Set<string>();
    const stopped: string[] = [];
    const errors: KielError[] = [];
    const id = ({ topic, partition }: { topic: string; partition: number }) => `${topic}:${partition}`;
    const coordinator: PartitionAllocator = new PartitionAllocator({
      backend,
      group: this.name,
      strategy: naive,
      strategyName: 'naive',
      fencingTimeout: undefined,
      rejoin: false,
      ...options,
      hooks: {
        assign: async (ps) => {
          for (const p of ps) if (coordinator.isOwned(id(p))) fetching.add(id(p));
        },
        revoke: async (ps) => {
          for (const p of ps) {
            fetching.delete(id(p));
            stopped.push(`revoke ${id(p)}`);
          }
        },
        drop: (ps) => {
          for (const p of ps) {
            fetching.delete(id(p));
            stopped.push(`drop ${id(p)}`);
          }
        },
        fence: () => undefined,
      },
    });
    const member = { coordinator, backend, fetching, stopped, errors };
    coordinator.on('error', (e) => errors.push(e));
    try {
      await coordinator.start();
    } catch (err) {
      // A refused start (ERR_DUPLICATE_INSTANCE) leaves the backend connected, for a later start(); nothing else
      // closes it here, and its heartbeat interval would keep the test process alive after the run.
      await backend.close();
      throw err;
    }
    this.members.push(member);
    return member;
  }

  async seed(member: Member): Promise<void> {
    await member.coordinator.addPartitions(PARTITIONS);
  }

  async allocation(): Promise<AllocationRecord | undefined> {
    const record = await this.observer.readRecord(this.name, 'allocation');
    return record ? (JSON.parse(record.value) as AllocationRecord) : undefined;
  }

  /** The session of `member` ends without a word: what a SIGKILL does once the server notices. */
  crash(member: Member): void {
    this.store.expireSession(member.backend.sessionId!);
  }

  /** Every live member fetches exactly what the published allocation gives it, and every partition is fetched. */
  async settled(live: readonly Member[]): Promise<boolean> {
    const record = await this.allocation();
    if (!record || record.throttled || record.waiting) return false;
    if (record.members.length !== live.length || !live.every((m) => record.members.includes(m.coordinator.memberId))) {
      return false;
    }
    const all = live.flatMap((m) => [...m.fetching]);
    if (all.length !== PARTITIONS.length || new Set(all).size !== PARTITIONS.length) return false;
    return live.every((m) => m.coordinator.currentGeneration === record.generation);
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.coordinator.stop().catch(() => undefined)));
    await this.observer.close();
  }
}

const partitionsIn = (assignment: Assignment, member: string) =>
  Object.entries(assignment[member] ?? {}).flatMap(([t, ps]) => ps.map((p) => `${t}:${p}`));

describe('restarts and deploys in the coordination core (memory backend)', () => {
  let group: Group;
  beforeEach(() => {
    group = new Group();
  });
  afterEach(() => group.close());

  it('a named member killed and back within rebalanceDelay gets its partitions again, and no other member stops any', async () => {
    const options = { rebalanceDelay: 5_000 };
    const a = await group.member({ ...options, instanceId: 'a' });
    await group.seed(a);
    const b = await group.member({ ...options, instanceId: 'b' });
    const c = await group.member({ ...options, instanceId: 'c' });
    await waitFor('three members settled', () => group.settled([a, b, c]), 3_000);
    const before = (await group.allocation())!;
    const bPartitions = [...b.fetching].sort();
    expect(partitionsIn(before.assignment, 'b').sort()).toEqual(bPartitions);

    group.crash(b);
    await waitFor('b waited for', async () => (await group.allocation())?.waiting?.b !== undefined, 3_000);
    const waiting = (await group.allocation())!;
    expect(waiting.assignment).toEqual(before.assignment);
    expect(waiting.waiting!.b).toBeGreaterThan(Date.now());
    expect(waiting.named).toEqual(['a', 'b', 'c']);

    const b2 = await group.member({ ...options, instanceId: 'b' });
    await waitFor(
      'b back',
      async () => (await group.settled([a, b2, c])) && !(await group.allocation())!.waiting,
      3_000,
    );
    expect([...b2.fetching].sort()).toEqual(bPartitions);
    expect((await group.allocation())!.assignment).toEqual(before.assignment);
    expect(a.stopped).toEqual([]);
    expect(c.stopped).toEqual([]);
  });

  it('a named member back while its old session still lives waits for that session, then takes its partitions; nothing is published', async () => {
    const options = { rebalanceDelay: 5_000 };
    const a = await group.member({ ...options, instanceId: 'a' });
    await group.seed(a);
    const b = await group.member({ ...options, instanceId: 'b' });
    await waitFor('two members settled', () => group.settled([a, b]), 3_000);
    const before = (await group.allocation())!;
    const bPartitions = [...b.fetching].sort();

    // A SIGKILL the server has not noticed yet: the old session (1 s) lives on, with its entry and claims.
    group.store.cutOffSession(b.backend.sessionId!);
    const b2 = await group.member({ ...options, instanceId: 'b' });
    await waitFor('b back', async () => [...b2.fetching].sort().join() === bPartitions.join(), 3_000);
    expect(await group.allocation()).toEqual(before);
    expect(a.stopped).toEqual([]);
    expect(b2.errors.filter((e) => e.code === 'ERR_DUPLICATE_INSTANCE')).toEqual([]);
    expect((await group.observer.members(group.name)).map((m) => m.info.id)).toEqual(['a', 'b']);
  });

  it('once rebalanceDelay has run out, the partitions of a named member that did not come back move', async () => {
    const options = { rebalanceDelay: 600 };
    const a = await group.member({ ...options, instanceId: 'a' });
    await group.seed(a);
    const b = await group.member({ ...options, instanceId: 'b' });
    await waitFor('two members settled', () => group.settled([a, b]), 3_000);
    group.crash(b);
    await waitFor('b waited for', async () => (await group.allocation())?.waiting?.b !== undefined, 3_000);
    expect(a.fetching.size).toBe(6);
    await waitFor('b given up', () => group.settled([a]), 3_000);
    const record = (await group.allocation())!;
    expect(record.members).toEqual(['a']);
    expect(record.waiting).toBeUndefined();
  });

  it('close() moves a named member’s partitions at once; close({ restarting: true }) leaves them waiting', async () => {
    const options = { rebalanceDelay: 60_000 };
    const a = await group.member({ ...options, instanceId: 'a' });
    await group.seed(a);
    const b = await group.member({ ...options, instanceId: 'b' });
    await waitFor('two members settled', () => group.settled([a, b]), 3_000);

    await b.coordinator.stop({ restarting: true });
    await waitFor('b waited for', async () => (await group.allocation())?.waiting?.b !== undefined, 3_000);
    expect(b.fetching.size).toBe(0);
    expect(a.fetching.size).toBe(6);

    const b2 = await group.member({ ...options, instanceId: 'b' });
    await waitFor('b back', () => group.settled([a, b2]), 3_000);
    await b2.coordinator.stop();
    // Well within the minute of rebalanceDelay: the leave notice moved them.
    await waitFor('b gone for good', () => group.settled([a]), 3_000);
    expect((await group.allocation())!.waiting).toBeUndefined();
    // Its notice is cleared when it joins again, so that a later crash is waited for.
    const b3 = await group.member({ ...options, instanceId: 'b' });
    await waitFor('b joined again', () => group.settled([a, b3]), 3_000);
    const control = await group.observer.readRecord(group.name, 'control');
    expect(JSON.parse(control!.value).leaving ?? {}).toEqual({});
  });

  it('a second live member with a taken name is refused with ERR_DUPLICATE_INSTANCE, and the first keeps going', async () => {
    const a = await group.member({ instanceId: 'same', sessionTimeout: 1_000 });
    await group.seed(a);
    await waitFor('a settled', () => group.settled([a]), 3_000);
    const started = performance.now();
    const refused = await group.member({ instanceId: 'same', sessionTimeout: 1_000 }).catch((e: unknown) => e);
    expect(isKielError(refused, 'ERR_DUPLICATE_INSTANCE')).toBe(true);
    expect((refused as KielError).option).toBe('instanceId');
    // It waited for a session timeout, since the older entry might have been its own killed incarnation.
    expect(performance.now() - started).toBeGreaterThanOrEqual(1_000);
    const members = await group.observer.members(group.name);
    expect(members.map((m) => m.info.id)).toEqual(['same']);
    expect(a.fetching.size).toBe(12);
  });

  it('a frozen group publishes nothing: joining members wait, a crashed member’s partitions wait; unfreeze moves', async () => {
    const a = await group.member();
    await group.seed(a);
    const b = await group.member();
    await waitFor('two members settled', () => group.settled([a, b]), 3_000);
    const generation = (await group.allocation())!.generation;

    const state = await freezeGroup(group.observer, group.name, { reason: 'deploy' });
    expect(state).toMatchObject({ frozen: true, reason: 'deploy' });
    expect(await freezeGroup(group.observer, group.name)).toEqual(state);
    await waitFor('a sees the freeze', () => a.coordinator.isFrozen, 3_000);
    const c = await group.member();
    group.crash(b);
    await sleep(500);
    expect((await group.allocation())!.generation).toBe(generation);
    expect(c.fetching.size).toBe(0);
    expect(a.fetching.size).toBe(6);
    expect(b.fetching.size).toBe(0);

    expect(await unfreezeGroup(group.observer, group.name)).toEqual({ frozen: false });
    expect(await groupControl(group.observer, group.name)).toEqual({ frozen: false });
    await waitFor('settled after unfreeze', () => group.settled([a, c]), 3_000);
  });

  it('maxMovesPerRebalance: 16 members starting together converge in steps of at most N moves, never sharing a partition', async () => {
    const N = 2;
    const first = await group.member({ maxMovesPerRebalance: N });
    await group.seed(first);
    await waitFor('first settled', () => group.settled([first]), 3_000);
    const start = (await group.allocation())!;
    const g0 = start.generation;
    const others = await Promise.all(Array.from({ length: 15 }, () => group.member({ maxMovesPerRebalance: N })));
    const all = [first, ...others];
    // The memory backend's watches deliver every state in order: every published step is seen.
    const records: AllocationRecord[] = [];
    const unwatch = group.observer.watchRecord(group.name, 'allocation', (r) => {
      const record = r && (JSON.parse(r.value) as AllocationRecord);
      if (record && record.generation > g0 && records.at(-1)?.generation !== record.generation) records.push(record);
    });
    let overlap = false;
    const sample = setInterval(() => {
      const fetched = all.flatMap((m) => [...m.fetching]);
      if (new Set(fetched).size !== fetched.length) overlap = true;
    }, 5);
    try {
      await waitFor('converged', () => group.settled(all), 30_000);
    } finally {
      clearInterval(sample);
      unwatch();
    }
    expect(overlap).toBe(false);
    // Each published step moves at most N partitions between live members.
    let previous: AllocationRecord = start;
    for (const record of records) {
      if (previous) {
        const moved = PARTITIONS.filter((p) => {
          const owner = (r: AllocationRecord) => r.members.find((m) => partitionsIn(r.assignment, m).includes(p));
          const before = owner(previous);
          return before !== undefined && record.members.includes(before) && owner(record) !== before;
        });
        expect(moved.length).toBeLessThanOrEqual(N);
      }
      previous = record;
    }
    const final = (await group.allocation())!;
    // 11 of the 12 partitions leave the first member, N per step.
    expect(final.generation - g0).toBeGreaterThanOrEqual(Math.ceil(11 / N));
    for (const m of all) expect(m.fetching.size).toBeLessThanOrEqual(1);
  }, 40_000);
  /** Every allocation the group publishes from now on, in order (the memory backend delivers each). */
  function published(): { records: AllocationRecord[]; stop: () => void } {
    const records: AllocationRecord[] = [];
    const stop = group.observer.watchRecord(group.name, 'allocation', (r) => {
      if (r && records.at(-1)?.generation !== parseAllocation(r.value, r.location).generation) {
        records.push(parseAllocation(r.value, r.location));
      }
    });
    return { records, stop };
  }

  it('initialRebalanceDelay: members starting together get one first allocation that lists them all', async () => {
    await group.observer.connect();
    const seen = published();
    const options = { initialRebalanceDelay: 500 };
    const a = await group.member(options);
    await group.seed(a);
    // Joins further apart than the leader takes to publish, closer than the delay.
    await sleep(200);
    const b = await group.member(options);
    await sleep(200);
    const c = await group.member(options);
    await waitFor('settled', () => group.settled([a, b, c]), 10_000);
    seen.stop();
    expect(seen.records.map((r) => r.members.length)).toEqual([3]);
    for (const m of [a, b, c]) expect(m.fetching.size).toBe(4);
  });

  it('without initialRebalanceDelay the first member gets an allocation of its own at once (the control case)', async () => {
    await group.observer.connect();
    const seen = published();
    const a = await group.member();
    await group.seed(a);
    await waitFor('a alone', () => group.settled([a]));
    const b = await group.member();
    await waitFor('settled', () => group.settled([a, b]));
    seen.stop();
    expect(seen.records[0]!.members).toEqual([a.coordinator.memberId]);
    expect(seen.records.length).toBeGreaterThan(1);
  });

  it('initialRebalanceDelay delays only a start: a member joining a running group is placed at once', async () => {
    const options = { initialRebalanceDelay: 1_500 };
    const a = await group.member(options);
    await group.seed(a);
    await waitFor('a alone, after the start delay', () => group.settled([a]), 10_000);
    const joined = performance.now();
    const b = await group.member(options);
    await waitFor('a and b', () => group.settled([a, b]), 10_000);
    // Well under the 1.5 s the start waited.
    expect(performance.now() - joined).toBeLessThan(1_000);
  });
});

describe('the allocation record of issue 19', () => {
  it.each([
    ['plain (format 1)', 12],
    ['compact (format 2)', 20_000],
  ])('carries waiting, named and throttled in the %s layout', (_layout, count) => {
    const partitions = Array.from({ length: count }, (_, p) => `orders.events-by-customer:${p}`).sort();
    const members = ['a', 'b', 'c'];
    const assignment = naive(members, partitions);
    const record: AllocationRecord = {
      generation: 7,
      leader: 'a',
      strategy: 'naive',
      members,
      partitions,
      assignment,
      waiting: { b: 1_796_300_000_000 },
      named: ['a', 'b'],
      throttled: 3,
    };
    const text = formatAllocation(record);
    expect((JSON.parse(text) as { format?: number }).format ?? 1).toBe(count > 1000 ? 2 : 1);
    const parsed = parseAllocation(text, 'test');
    expect({ waiting: parsed.waiting, named: parsed.named, throttled: parsed.throttled }).toEqual({
      waiting: { b: 1_796_300_000_000 },
      named: ['a', 'b'],
      throttled: 3,
    });
    // Compared as one string per member, ids sorted: the compact layout lists them in numeric order.
    const owned = (a: Assignment) => members.map((m) => partitionsIn(a, m).sort().join(',')).join('\n');
    expect(owned(parsed.assignment) === owned(assignment)).toBe(true);
  });
});

describe('throttleMoves', () => {
  const live = new Set(['a', 'b', 'c']);
  it('keeps at most max moves between live members, taking one per gaining member in turn', () => {
    const previous: Assignment = { a: { t: [0, 1, 2, 3, 4, 5] } };
    const next: Assignment = { a: { t: [0, 1] }, b: { t: [2, 3] }, c: { t: [4, 5] } };
    const { assignment, throttled } = throttleMoves(previous, next, live, 2);
    expect(assignment).toEqual({ a: { t: [0, 1, 3, 5] }, b: { t: [2] }, c: { t: [4] } });
    expect(throttled).toBe(2);
  });
  it('never counts partitions without a live previous owner', () => {
    const previous: Assignment = { gone: { t: [0, 1, 2] }, a: { t: [3] } };
    const next: Assignment = { a: { t: [0] }, b: { t: [1, 3] }, c: { t: [2, 4] } };
    const { assignment, throttled } = throttleMoves(previous, next, live, 1);
    expect(assignment).toEqual(next);
    expect(throttled).toBe(0);
  });
});

describe('GroupedConsumer options of issue 19', () => {
  const base = { brokers: ['127.0.0.1:9092'], group: 'g', backend: new MemoryBackend({ store: new MemoryStore() }) };
  it.each([
    ['instanceId', ''],
    ['instanceId', 'has space'],
    ['instanceId', 'a/b'],
    ['instanceId', 'x'.repeat(250)],
    ['instanceId', 7],
    ['rebalanceDelay', -1],
    ['rebalanceDelay', 1.5],
    ['initialRebalanceDelay', -1],
    ['initialRebalanceDelay', 1.5],
    ['initialRebalanceDelay', 'soon'],
    ['initialRebalanceDelay', 600_001],
    ['maxMovesPerRebalance', 0],
    ['maxMovesPerRebalance', 'many'],
  ])('refuses %s = %j with ERR_INVALID_CONFIG naming it', (option, value) => {
    let thrown: unknown;
    try {
      new GroupedConsumer({ ...base, [option]: value } as never);
    } catch (e) {
      thrown = e;
    }
    expect(isKielError(thrown, 'ERR_INVALID_CONFIG')).toBe(true);
    expect((thrown as KielError).option).toBe(option);
  });
  it('memberId before connect() is the instanceId, or an empty string (it threw a TypeError)', () => {
    expect(new GroupedConsumer(base).memberId).toBe('');
    expect(new GroupedConsumer({ ...base, instanceId: 'orders-1' }).memberId).toBe('orders-1');
    const metrics = new GroupedConsumer(base).metrics();
    expect(metrics['member-id']).toBe('');
    expect(metrics['backend-last-contact-ms-ago']).toBeNaN();
  });
  it('accepts a Kafka-style instance id', () => {
    expect(
      () => new GroupedConsumer({ ...base, instanceId: 'orders-worker-3.eu_1', rebalanceDelay: 30_000 }),
    ).not.toThrow();
  });
});
