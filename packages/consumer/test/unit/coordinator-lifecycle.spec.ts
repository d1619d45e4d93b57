// PartitionAllocator's start and its recovery after a lost session, at the edges: a second coordinator on one backend,
// a session that expires while joining, a fencing timeout the server's session timeout does not leave room for, and
// a rejoin the backend can never grant.
import {
  BackendErrorImpl,
  DEPARTED_KEEP_MS,
  parseControl,
  type ControlRecord,
  formatAllocation,
  PartitionAllocator,
  MemoryBackend,
  parseAllocation,
  type HandoffHooks,
  type KielError,
  type Member,
  type MemberInfo,
  type RecordListener,
  type RecordName,
  type Unsubscribe,
} from '../../src/internal';
import { sleep, waitFor } from '@kiel/test-kit';
import { Group, settles } from './coordinator-group';

const noHooks: HandoffHooks = {
  assign: async () => undefined,
  revoke: async () => undefined,
  drop: () => undefined,
  fence: () => undefined,
};

let group: Group;

function coordinatorOn(backend: MemoryBackend, options: { fencingTimeout?: number } = {}): PartitionAllocator {
  return new PartitionAllocator({
    backend,
    group: group.name,
    strategy: group.strategy,
    strategyName: 'placement',
    fencingTimeout: options.fencingTimeout,
    rejoin: true,
    hooks: noHooks,
  });
}

/** The member entries of the group, as the store has them. */
async function entries(): Promise<string[]> {
  if (group.observer.state === 'idle') await group.observer.connect();
  return (await group.observer.members(group.name)).map((m) => m.info.id);
}

describe('PartitionAllocator start and rejoin edges', () => {
  beforeEach(() => {
    group = new Group();
  });
  afterEach(async () => {
    await group.close();
  });

  it('rejects a second coordinator on a backend another one uses, until the first has stopped', async () => {
    const backend = new MemoryBackend({ store: group.store });
    const first = coordinatorOn(backend);
    const second = coordinatorOn(backend);
    try {
      await first.start();
      const rejected = await second.start().then(
        () => undefined,
        (err: KielError) => err,
      );
      expect(rejected).toMatchObject({ code: 'ERR_INVALID_CONFIG', option: 'backend' });
      expect(rejected?.message).toMatch(/backend/);
      expect(rejected?.message).toMatch(/session/);
      expect(await entries()).toEqual([first.memberId]);
      // Stopping the refused one (the consumer's close() after a failed connect) leaves the first one's session alone.
      await second.stop();
      expect({ state: backend.state, entries: await entries() }).toEqual({
        state: 'connected',
        entries: [first.memberId],
      });

      // Once the first has stopped (keeping the backend open), the backend is free for another.
      await first.stop({ closeBackend: false });
      await second.start();
      expect(await entries()).toEqual([second.memberId]);
    } finally {
      await second.stop().catch(() => undefined);
      await first.stop().catch(() => undefined);
      await backend.close();
    }
  });

  it('a connect that looks stale (a starved process) fences nothing before the join, and start succeeds', async () => {
    // The process was starved between the session's grant and the `connected` event: the last contact looks older
    // than the fencing timeout when the event arrives, before this member has joined (and so before it has an id).
    class StaleUntilJoined extends MemoryBackend {
      joined = false;
      override get lastContact(): number {
        return this.joined ? super.lastContact : -60_000;
      }
      override async join(g: string, info: MemberInfo): Promise<Member> {
        const member = await super.join(g, info);
        this.joined = true;
        return member;
      }
    }
    const backend = new StaleUntilJoined({ store: group.store });
    const fences: string[] = [];
    const coordinator: PartitionAllocator = new PartitionAllocator({
      backend,
      group: group.name,
      strategy: group.strategy,
      strategyName: 'placement',
      fencingTimeout: 500,
      rejoin: true,
      // As GroupedConsumer's hook does: it names the member in the fence's error.
      hooks: { ...noHooks, fence: (fenced) => void fences.push(`${fenced} ${coordinator.memberId}`) },
    });
    const errors: KielError[] = [];
    coordinator.on('error', (e) => errors.push(e));
    try {
      await coordinator.start();
      await coordinator.addPartitions(['t:0']);
      await waitFor('the member owning t:0', () => coordinator.isOwned('t:0'), 3_000);
      expect({ errors: errors.map((e) => e.message), fenced: coordinator.isFenced }).toEqual({
        errors: [],
        fenced: false,
      });
      expect(fences).toEqual([]);
    } finally {
      await coordinator.stop().catch(() => undefined);
    }
  });

  it('joins once, on a new session, when the session expires between connect and join', async () => {
    class ExpiresBeforeJoin extends MemoryBackend {
      armed = true;
      override async join(g: string, info: MemberInfo): Promise<Member> {
        if (this.armed) {
          this.armed = false;
          group.store.expireSession(this.sessionId!);
          await sleep(10);
        }
        return super.join(g, info);
      }
    }
    const backend = new ExpiresBeforeJoin({ store: group.store });
    const coordinator = coordinatorOn(backend);
    const errors: KielError[] = [];
    coordinator.on('error', (e) => errors.push(e));
    try {
      const started = await coordinator.start().then(
        () => 'started',
        (err: Error) => `rejected: ${err.message}`,
      );
      await sleep(500);
      // Either way, no member entry may live that nobody stops: started with exactly one entry, its own.
      expect({ started, entries: await entries() }).toEqual({ started: 'started', entries: [coordinator.memberId] });
      await coordinator.addPartitions(['t:0']);
      await waitFor('the one member owning t:0', () => coordinator.isOwned('t:0'), 3_000);
    } finally {
      await coordinator.stop().catch(() => undefined);
    }
  });

  it('joins once, on a new session, when the session expires right after the join', async () => {
    class ExpiresAfterJoin extends MemoryBackend {
      armed = true;
      override async join(g: string, info: MemberInfo): Promise<Member> {
        const member = await super.join(g, info);
        if (this.armed) {
          this.armed = false;
          group.store.expireSession(this.sessionId!);
          await sleep(10);
        }
        return member;
      }
    }
    const backend = new ExpiresAfterJoin({ store: group.store });
    const coordinator = coordinatorOn(backend);
    const lost: string[] = [];
    coordinator.on('lost', ({ memberId }) => lost.push(memberId));
    try {
      await coordinator.start();
      await sleep(500);
      expect(await entries()).toEqual([coordinator.memberId]);
      await coordinator.addPartitions(['t:0']);
      await waitFor('the one member owning t:0', () => coordinator.isOwned('t:0'), 3_000);
      expect(await entries()).toEqual([coordinator.memberId]);
    } finally {
      await coordinator.stop().catch(() => undefined);
    }
  });

  it('follows no record delivered between a lost session and its rejoin: its old id claims nothing for the new session', async () => {
    // The etcd soak caught it after a quorum loss: an expired lease's watches still deliver, the leader had published
    // a generation with the member's old id in it, and the member followed it with that id, claimed the old id's
    // partitions once its new lease came, and kept one of them from the generation that followed.
    const rejoin = group.gate();
    const claimsWhileRejoining: string[] = [];
    let lost = false;
    let rejoined = false;
    class HeldRejoin extends MemoryBackend {
      /** The coordinator's allocation listener: etcd's watches outlive an expired lease, the store's here do not. */
      allocationListener: RecordListener | undefined;
      override watchRecord(g: string, name: RecordName, listener: RecordListener): Unsubscribe {
        if (name === 'allocation') this.allocationListener = listener;
        return super.watchRecord(g, name, listener);
      }
      override async connect(): Promise<void> {
        if (lost) await rejoin.wait;
        return super.connect();
      }
      override async claim(g: string, partition: string, value: string): Promise<boolean> {
        if (lost && !rejoined) claimsWhileRejoining.push(partition);
        return super.claim(g, partition, value);
      }
    }
    const backend = new HeldRejoin({ store: group.store });
    const coordinator = coordinatorOn(backend);
    coordinator.on('lost', () => (lost = true));
    coordinator.on('rejoined', () => (rejoined = true));
    try {
      await coordinator.start();
      await coordinator.addPartitions(['t:0', 't:1']);
      await waitFor('both partitions owned', () => coordinator.isOwned('t:0') && coordinator.isOwned('t:1'), 3_000);
      const oldId = coordinator.memberId;
      group.store.expireSession(backend.sessionId!);
      await waitFor('the session lost', () => lost, 3_000);
      // A record written before the loss was noticed: a newer generation, the old id in it with both partitions.
      if (group.observer.state === 'idle') await group.observer.connect();
      const current = (await group.observer.readRecord(group.name, 'allocation'))!;
      const generation = parseAllocation(current.value, current.location).generation + 5;
      const written = await group.observer.writeRecord(
        group.name,
        'allocation',
        formatAllocation({
          generation,
          leader: oldId,
          strategy: 'placement',
          members: [oldId],
          partitions: ['t:0', 't:1'],
          assignment: { [oldId]: { t: [0, 1] } },
        }),
        current.version,
      );
      expect(written).not.toBeNull();
      // Delivered on the old session's watch.
      backend.allocationListener!((await group.observer.readRecord(group.name, 'allocation'))!);
      await sleep(300);
      expect(claimsWhileRejoining).toEqual([]);
      rejoin.open();
      await waitFor('the rejoin', () => rejoined, 3_000);
      // Alone in the group under its new id, it leads, publishes, and owns both again.
      await waitFor(
        'both partitions owned again',
        () => coordinator.isOwned('t:0') && coordinator.isOwned('t:1'),
        3_000,
      );
      expect(coordinator.memberId).not.toBe(oldId);
    } finally {
      await coordinator.stop().catch(() => undefined);
    }
  });

  it('fails start when the session timeout the server granted leaves no room for the fencing timeout', async () => {
    // Asked for 10 s; the server clamps it to 4 s (as ZooKeeper does to its maxSessionTimeout).
    class Clamped extends MemoryBackend {
      override async connect(): Promise<void> {
        await super.connect();
        (this as { sessionTimeout: number }).sessionTimeout = 4_000;
      }
    }
    const backend = new Clamped({ store: group.store, sessionTimeout: 10_000 });
    const coordinator = coordinatorOn(backend, { fencingTimeout: 5_000 });
    try {
      const rejected = await coordinator.start().then(
        () => undefined,
        (err: KielError) => err,
      );
      expect(rejected).toMatchObject({ code: 'ERR_INVALID_CONFIG', option: 'fencingTimeout' });
      expect(rejected?.message).toMatch(/5000/);
      expect(rejected?.message).toMatch(/4000/);
      expect(await entries()).toEqual([]);
    } finally {
      await coordinator.stop().catch(() => undefined);
    }
  });

  it.each([
    ['ERR_BACKEND_AUTH', 'the credentials are refused'],
    ['ERR_BACKEND_CLOSED', 'the backend was closed'],
  ] as const)('gives up rejoining with a fatal ERR_FENCED on %s (%s)', async (code, _why) => {
    class RefusesNewSessions extends MemoryBackend {
      connects = 0;
      override async connect(): Promise<void> {
        if (++this.connects > 1) throw new BackendErrorImpl(code, 'injected: refused for good');
        await super.connect();
      }
    }
    const a = await group.start('A', { Backend: RefusesNewSessions });
    const lost: string[] = [];
    a.coordinator.on('lost', ({ memberId }) => lost.push(memberId));
    group.store.expireSession(a.backend.sessionId!);
    await waitFor('A lost its session', () => lost.length === 1, 3_000);
    // Tries once, sees a cause retrying cannot fix, and stops: no loop of attempts.
    await settles(() => a.backend.connects > 3, 1_600);
    expect(a.backend.connects).toBe(2);
    const fatal = a.errors.filter((e) => e.code === 'ERR_FENCED');
    expect(fatal).toHaveLength(1);
    expect(fatal[0]!.message).toMatch(new RegExp(`refused for good \\(${code}`));
    expect(fatal[0]!.retriable).toBe(false);
  });

  it('follows the group again when started after a stop that came while it had lost its session (rejoin off)', async () => {
    const backend = new MemoryBackend({ store: group.store });
    const coordinator = new PartitionAllocator({
      backend,
      group: group.name,
      strategy: group.strategy,
      strategyName: 'placement',
      fencingTimeout: undefined,
      rejoin: false,
      hooks: noHooks,
    });
    const errors: KielError[] = [];
    coordinator.on('error', (e) => errors.push(e));
    try {
      await coordinator.start();
      await coordinator.addPartitions(['t:0', 't:1']);
      await waitFor('owning both partitions', () => coordinator.ownedPartitions.length === 2, 3_000);
      const lost: string[] = [];
      coordinator.on('lost', ({ memberId }) => lost.push(memberId));
      group.store.expireSession(backend.sessionId!);
      await waitFor('the session lost', () => lost.length === 1, 3_000);
      expect(coordinator.ownedPartitions).toEqual([]);

      // The application restarts the consumer on the same backend instance: a new session, a new member.
      await coordinator.stop({ closeBackend: false });
      await coordinator.start();
      await settles(() => coordinator.ownedPartitions.length === 2, 3_000);
      expect({ owned: coordinator.ownedPartitions, generation: coordinator.currentGeneration > 0 }).toEqual({
        owned: ['t:0', 't:1'],
        generation: true,
      });
    } finally {
      await coordinator.stop().catch(() => undefined);
    }
  });

  it('says so in the control record before its entry goes when it leaves gracefully, and drops notices past their time', async () => {
    const stale = Date.now() - DEPARTED_KEEP_MS - 1_000;
    if (group.observer.state === 'idle') await group.observer.connect();
    await group.observer.writeRecord(group.name, 'control', JSON.stringify({ departed: { 'long-gone': stale } }), null);
    const a = await group.start('A');
    const b = await group.start('B');
    const idA = a.coordinator.memberId;
    // What the control record said at the moment A's entry was seen gone.
    let atGone: ControlRecord | undefined;
    const unsubscribe = group.observer.watchMembers(group.name, (members) => {
      if (atGone === undefined && !members.some((m) => m.info.id === idA)) {
        void group.observer.readRecord(group.name, 'control').then((r) => (atGone = parseControl(r!.value, 'control')));
      }
    });
    try {
      const before = Date.now();
      await a.coordinator.stop();
      await waitFor('the observer to see A gone', () => atGone !== undefined, 3_000);
      expect(Object.keys(atGone!.departed ?? {})).toEqual([idA]);
      expect(atGone!.departed![idA]).toBeGreaterThanOrEqual(before);
      // A member whose session ends writes nothing.
      group.store.expireSession(b.backend.sessionId!);
      await waitFor('B rejoined', () => b.ids.length > 1, 3_000);
      const control = parseControl((await group.observer.readRecord(group.name, 'control'))!.value, 'control');
      expect(Object.keys(control.departed ?? {})).toEqual([idA]);
    } finally {
      unsubscribe();
    }
  });

  it('refuses a malformed departure notice', () => {
    expect(parseControl('{"departed":{"m":5}}', 'c').departed).toEqual({ m: 5 });
    expect(() => parseControl('{"departed":{"m":"yesterday"}}', 'c')).toThrow(/departed/);
    expect(() => parseControl('{"departed":[1]}', 'c')).toThrow(/departed/);
  });

  it('refuses leave notices and waited-for members that are not an object of member to number', () => {
    expect(parseControl('{"leaving":{"m":3}}', 'c').leaving).toEqual({ m: 3 });
    expect(() => parseControl('{"leaving":null}', 'c')).toThrow(/`leaving` must be an object of member → order/);
    expect(() => parseControl('{"leaving":{"m":"3"}}', 'c')).toThrow(/`leaving`/);
    const record = (waiting: unknown) =>
      JSON.stringify({
        version: 1,
        generation: 2,
        leader: 'm',
        strategy: 'naive',
        members: ['m'],
        partitions: [],
        assignment: {},
        waiting,
      });
    expect(parseAllocation(record({ n: 5 }), 'a').waiting).toEqual({ n: 5 });
    expect(() => parseAllocation(record([5]), 'a')).toThrow(/`waiting` must be an object of member → ms/);
    expect(() => parseAllocation(record({ n: null }), 'a')).toThrow(/`waiting`/);
  });
});
