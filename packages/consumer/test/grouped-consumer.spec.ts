// The GroupedConsumer against real Kafka, with MemoryBackend: 3 members in one process on a 12-partition topic
// with messages flowing all the time. Proves: a graceful leave and a join lose and duplicate nothing; a crash
// loses nothing and duplicates only after the crashed member's last commit; no two members ever handle the same
// partition at the same time.
import { GroupedConsumer, MemoryBackend, MemoryStore, type KielError } from '../src';
import { ContinuousProducer, KAFKA_BROKERS, ProcessingLog, sleep, topics, uniqueName, waitFor } from '@kiel/test-kit';

const t = topics();
afterAll(() => t.cleanup());

const PARTITIONS = 12;

class Group {
  readonly store = new MemoryStore();
  readonly log = new ProcessingLog();
  readonly members = new Map<string, GroupedConsumer<Buffer>>();
  readonly runs: Promise<void>[] = [];
  readonly errors: Array<{ member: string; error: KielError }> = [];
  /** Members that crashed: their handlers stop recording. */
  readonly crashed = new Set<string>();
  /** A crashed member's handler hangs (a dead process handles nothing) until the test ends. */
  private endOfCrash!: () => void;
  private readonly crashOver = new Promise<void>((resolve) => (this.endOfCrash = resolve));
  /** Last offset each member committed per partition. */
  readonly commits = new Map<string, Map<number, number>>();
  readonly group = uniqueName('kiel-group');

  constructor(
    readonly topic: string,
    readonly strategy: 'naive' | 'sticky',
  ) {}

  async add(name: string, options: { rejoin?: boolean; autocommit?: boolean } = {}): Promise<GroupedConsumer<Buffer>> {
    const consumer = new GroupedConsumer<Buffer>({
      brokers: KAFKA_BROKERS,
      group: this.group,
      topics: [this.topic],
      backend: new MemoryBackend({ store: this.store, sessionTimeout: 3000 }),
      strategy: this.strategy,
      deserializer: 'raw',
      maxWaitTime: 100,
      ...(options.rejoin !== undefined ? { rejoin: options.rejoin } : {}),
      ...(options.autocommit !== undefined ? { autocommit: options.autocommit } : {}),
    });
    consumer.on('error', (error) => this.errors.push({ member: name, error }));
    consumer.on('commit', ({ offsets }) => {
      const mine = this.commits.get(name) ?? new Map<number, number>();
      for (const o of offsets) mine.set(o.partition, o.offset);
      this.commits.set(name, mine);
    });
    this.members.set(name, consumer);
    await consumer.connect();
    this.runs.push(
      consumer.run({
        eachBatch: async (batch) => {
          if (this.crashed.has(name)) return this.crashOver;
          const start = performance.now();
          await sleep(Math.random() * 4);
          this.log.record(
            name,
            batch.partition,
            batch.messages.map((m) => m.offset),
            start,
            performance.now(),
          );
        },
      }),
    );
    return consumer;
  }

  /** Waits until the live members follow one allocation and own every partition exactly once, each some. */
  async stable(live: string[]): Promise<void> {
    await waitFor(`${live.join(', ')} to own all ${PARTITIONS} partitions`, () => {
      const members = live.map((name) => this.members.get(name)!);
      const generations = new Set(members.map((m) => m.generation));
      const owned = members.flatMap((m) => m.assignment);
      return (
        generations.size === 1 &&
        members.every((m) => m.assignment.length > 0) &&
        owned.length === PARTITIONS &&
        new Set(owned).size === PARTITIONS
      );
    });
  }

  async closeAll(): Promise<void> {
    this.endOfCrash();
    await Promise.all([...this.members.values()].map((m) => m.close()));
    await Promise.allSettled(this.runs);
  }

  check(
    produced: readonly number[],
    allowDuplicates?: (d: { partition: number; offset: number; members: string[] }) => boolean,
  ): void {
    expect(this.log.lost(produced)).toEqual([]);
    const dups = this.log.duplicates().filter((d) => !allowDuplicates?.(d));
    expect(dups).toEqual([]);
    expect(this.log.overlaps()).toEqual([]);
    // The only error allowed: the crashed member (rejoin off) reporting that it lost its session.
    const unexpected = this.errors.filter(
      ({ member, error }) => !(this.crashed.has(member) && error.code === 'ERR_FENCED'),
    );
    expect(unexpected.map(({ member, error }) => `${member}: ${error.message}`)).toEqual([]);
  }
}

/** Waits until `producer` has produced `count` more messages, however long the machine takes. */
async function flowing(producer: ContinuousProducer, count: number): Promise<void> {
  const target = producer.total + count;
  await waitFor(`${count} more messages produced`, () => producer.total >= target, 30_000);
}

describe.each(['naive', 'sticky'] as const)('GroupedConsumer with MemoryBackend and %s', (strategy) => {
  it.each([true, false])(
    'loses and duplicates nothing when a member leaves gracefully in mid-stream (autocommit %s)',
    async (autocommit) => {
      const topic = await t.create('grouped-leave', PARTITIONS);
      const producer = new ContinuousProducer(topic, PARTITIONS);
      const group = new Group(topic, strategy);
      await producer.start();
      try {
        // Without autocommit, offsets are committed only at the handoff: the commit-before-release path alone.
        await Promise.all(['a', 'b', 'c'].map((n) => group.add(n, { autocommit })));
        await group.stable(['a', 'b', 'c']);
        // Traffic before and after the leave, counted rather than slept for: a loaded machine produces less per ms.
        await flowing(producer, 250);
        await group.members.get('c')!.close();
        await group.stable(['a', 'b']);
        await flowing(producer, 260);
      } finally {
        await producer.stop();
      }
      await waitFor('every produced message to be handled', () => group.log.complete(producer.produced));
      await group.closeAll();
      expect(producer.total).toBeGreaterThan(500);
      group.check(producer.produced);
    },
  );

  it('loses and duplicates nothing when a member joins in mid-stream', async () => {
    const topic = await t.create('grouped-join', PARTITIONS);
    const producer = new ContinuousProducer(topic, PARTITIONS);
    const group = new Group(topic, strategy);
    await producer.start();
    try {
      await Promise.all(['a', 'b'].map((n) => group.add(n)));
      await group.stable(['a', 'b']);
      await sleep(400);
      await group.add('c');
      await group.stable(['a', 'b', 'c']);
      expect(group.members.get('c')!.assignment.length).toBeGreaterThan(0);
      await sleep(400);
    } finally {
      await producer.stop();
    }
    await waitFor('every produced message to be handled', () => group.log.complete(producer.produced));
    await group.closeAll();
    group.check(producer.produced);
  });

  it("loses nothing when a member crashes, and duplicates only after the crashed member's last commit", async () => {
    const topic = await t.create('grouped-crash', PARTITIONS);
    const producer = new ContinuousProducer(topic, PARTITIONS);
    const group = new Group(topic, strategy);
    await producer.start();
    let crashedOwned: string[] = [];
    let lastCommits = new Map<number, number>();
    try {
      await Promise.all(['a', 'b', 'c'].map((n) => group.add(n, { rejoin: n !== 'c' })));
      await group.stable(['a', 'b', 'c']);
      await sleep(400);
      const c = group.members.get('c')!;
      crashedOwned = c.assignment;
      // The process dies: it handles nothing more; then its session times out, with no cleanup.
      group.crashed.add('c');
      await sleep(20);
      lastCommits = new Map(group.commits.get('c') ?? []);
      const backend = (c as unknown as { allocator: { backend: MemoryBackend } }).allocator.backend;
      expect(group.store.expireSession(backend.sessionId!)).toBe(true);
      await group.stable(['a', 'b']);
      await sleep(400);
    } finally {
      await producer.stop();
    }
    await waitFor('every produced message to be handled', () => group.log.complete(producer.produced));
    await group.closeAll();
    expect(crashedOwned.length).toBeGreaterThan(0);
    group.check(
      producer.produced,
      (d) =>
        d.members.includes('c') &&
        crashedOwned.includes(`${topic}:${d.partition}`) &&
        d.offset >= (lastCommits.get(d.partition) ?? 0),
    );
  });
});
