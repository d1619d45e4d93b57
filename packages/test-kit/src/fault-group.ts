// A group of GroupedConsumers on one backend factory and one topic, with what the fault tests check: who handled
// which offsets when (the ProcessingLog of @kiel/consumer's group tests), each member's events and its commits up
// to each lost session. Backend-neutral: the ZooKeeper and etcd packages' group fault tests share it.
import { GroupedConsumer, type AllocatorBackend, type KielError } from '@kiel/consumer/internal';
import { ChildMember, type ChildMemberConfig } from './child-member';
import { KAFKA_BROKERS, uniqueName } from './env';
import { ContinuousProducer, ProcessingLog } from './group-harness';
import { sleep, waitFor } from './wait';

/** Wall-clock ms with sub-ms precision, comparable across processes (child members report the same clock). */
export const wallClock = () => performance.timeOrigin + performance.now();

/** One member: its consumer and backend, and what happened to it. */
export interface GroupMember {
  readonly name: string;
  readonly consumer: GroupedConsumer<Buffer>;
  readonly backend: AllocatorBackend;
  readonly events: Array<{ event: string; at: number; info?: unknown; margin?: number }>;
  /** Last committed offset per partition, over the member's whole life. */
  readonly commits: Map<number, number>;
  /** `commits` as it stood when each lost session was over (at `rejoined`): what a redelivery may start from. */
  readonly commitsAtLoss: Array<Map<number, number>>;
  /** Member ids it had, in order (a new one after each rejoin). */
  readonly memberIds: string[];
}

/** GroupedConsumers in this process (and ChildMembers) on one topic, with their events and commits recorded. */
export class FaultGroup {
  readonly log = new ProcessingLog();
  readonly members = new Map<string, GroupMember>();
  readonly errors: Array<{ member: string; error: KielError }> = [];
  readonly group = uniqueName('kiel-faults');
  /** Members of other processes, by name: assignment and generation as they last reported them. */
  readonly remote = new Map<string, { assignment: string[]; generation: number }>();
  /** Commits of other processes' members, per partition, as they reported them. */
  readonly remoteCommits = new Map<string, Map<number, number>>();
  private readonly runs: Promise<void>[] = [];

  constructor(
    readonly topic: string,
    readonly partitions: number,
    private readonly backendFactory: () => AllocatorBackend,
    private readonly strategy: 'naive' | 'sticky' = 'sticky',
    /** Kafka bootstrap servers (the single-node stack's by default; the cluster tests pass the cluster's). */
    private readonly brokers: readonly string[] = KAFKA_BROKERS,
  ) {}

  async add(name: string): Promise<GroupMember> {
    const backend = this.backendFactory();
    const consumer = new GroupedConsumer<Buffer>({
      brokers: [...this.brokers],
      group: this.group,
      topics: [this.topic],
      backend,
      strategy: this.strategy,
      deserializer: 'raw',
      maxWaitTime: 100,
    });
    const member: GroupMember = {
      name,
      consumer,
      backend,
      events: [],
      commits: new Map(),
      commitsAtLoss: [],
      memberIds: [],
    };
    for (const event of ['fenced', 'unfenced', 'lost', 'rejoined', 'rebalance'] as const) {
      consumer.on(event, (info?: unknown) => {
        // At `fenced`, how long the lease or session could still have been alive: the fence must come first.
        const margin =
          event === 'fenced' ? backend.lastContact + backend.sessionTimeout - performance.now() : undefined;
        member.events.push({ event, at: wallClock(), info, ...(margin !== undefined ? { margin } : {}) });
        if (event === 'rejoined') {
          member.commitsAtLoss.push(new Map(member.commits));
          member.memberIds.push(consumer.memberId);
        }
      });
    }
    // The backend's session events too (as `backend:<event>`), so that a failure can be read as a timeline.
    for (const event of ['connected', 'disconnected', 'expired'] as const) {
      backend.on(event, (info: unknown) => member.events.push({ event: `backend:${event}`, at: wallClock(), info }));
    }
    consumer.on('error', (error) => this.errors.push({ member: name, error }));
    consumer.on('commit', ({ offsets }) => {
      for (const o of offsets) member.commits.set(o.partition, o.offset);
    });
    this.members.set(name, member);
    await consumer.connect();
    member.memberIds.push(consumer.memberId);
    this.runs.push(
      consumer.run({
        eachBatch: async (batch) => {
          const start = wallClock();
          await sleep(Math.random() * 4);
          this.log.record(
            name,
            batch.partition,
            batch.messages.map((m) => m.offset),
            start,
            wallClock(),
          );
        },
      }),
    );
    return member;
  }

  /**
   * Starts a member in a child process: `fixture` is the backend package's `test/fixtures/group-member-process.js`,
   * `backend` what its backend line needs. Its reports feed this group (handled batches, assignment, commits).
   */
  addChild(
    name: string,
    fixture: string,
    backend: { hosts: string; namespace: string; sessionTimeout: number },
  ): ChildMember {
    const member = new ChildMember(
      name,
      fixture,
      { brokers: this.brokers, group: this.group, topic: this.topic, strategy: this.strategy, ...backend },
      this.log,
    );
    this.remote.set(name, member);
    this.remoteCommits.set(name, member.commits);
    return member;
  }

  /** Every partition owned exactly once by the live members, all on one generation, each member owning some. */
  isStable(): boolean {
    const views = [
      ...[...this.members.values()].map((m) => ({
        assignment: m.consumer.assignment,
        generation: m.consumer.generation,
      })),
      ...this.remote.values(),
    ];
    const owned = views.flatMap((v) => v.assignment);
    return (
      new Set(views.map((v) => v.generation)).size === 1 &&
      views.every((v) => v.assignment.length > 0) &&
      owned.length === this.partitions &&
      new Set(owned).size === this.partitions
    );
  }

  async stable(timeoutMs = 20_000): Promise<void> {
    const since = wallClock();
    await waitFor(`a stable allocation of ${this.partitions} partitions`, () => this.isStable(), timeoutMs).catch(
      (error: Error) => {
        throw new Error(`${error.message}: ${this.describeViews(since)}`);
      },
    );
  }

  /** Each member's generation, assignment and last events, with times in ms relative to `since` (a wallClock()). */
  describeViews(since: number): string {
    const local = [...this.members.values()].map(
      (m) =>
        `${m.name} gen ${m.consumer.generation} [${m.consumer.assignment.join(',')}] events ` +
        m.events
          .filter((e) => e.event !== 'rebalance' || e.at >= since)
          .slice(-12)
          .map(
            (e) =>
              `${e.event}@${Math.round(e.at - since)}${e.event.startsWith('backend:') ? JSON.stringify(e.info) : ''}`,
          )
          .join(' '),
    );
    const remote = [...this.remote.entries()].map(
      ([name, v]) => `${name} gen ${v.generation} [${v.assignment.join(',')}]`,
    );
    return [...local, ...remote].join('; ');
  }

  /** The generation the members follow (the highest, if they disagree for a moment). */
  get generation(): number {
    return Math.max(...[...this.members.values()].map((m) => m.consumer.generation));
  }

  eventsOf(name: string, event: string): Array<{ at: number; info?: unknown; margin?: number }> {
    return this.members.get(name)!.events.filter((e) => e.event === event);
  }

  /**
   * Duplicates not explained by a lost session: an offset handled twice is allowed only when whoever handled it
   * first lost its session (or was killed) afterwards and had not committed past it.
   */
  unexplainedDuplicates(): Array<{ partition: number; offset: number; members: string[] }> {
    return this.log.duplicates().filter(({ partition, offset, members }) => {
      const first = members[0]!;
      const snapshots = this.members.get(first)?.commitsAtLoss ?? [];
      const remote = this.remoteCommits.get(first);
      const committedBefore = [...snapshots, ...(remote ? [remote] : [])].map((s) => s.get(partition) ?? 0);
      return !committedBefore.some((committed) => offset >= committed);
    });
  }

  /** Per partition, the longest time between two consecutive batches handled in [from, to], ms. */
  longestGaps(partitions: readonly number[], from: number, to: number): Map<number, number> {
    const gaps = new Map<number, number>();
    for (const partition of partitions) {
      const starts = this.log.intervals
        .filter((i) => i.partition === partition && i.start >= from && i.start <= to)
        .map((i) => i.start)
        .sort((a, b) => a - b);
      let longest = starts.length === 0 ? to - from : Math.max(starts[0]! - from, to - starts.at(-1)!);
      for (let i = 1; i < starts.length; i++) longest = Math.max(longest, starts[i]! - starts[i - 1]!);
      gaps.set(partition, Math.round(longest));
    }
    return gaps;
  }

  /**
   * The first `limit` overlaps, each with what its two members went through (events and session events, ms relative
   * to `since`), so that a failed "never two owners" check says how it happened.
   */
  describeOverlaps(since: number, limit = 3): string[] {
    const at = (ms: number) => Math.round(ms - since);
    const story = (name: string) =>
      (this.members.get(name)?.events ?? [])
        .map((e) => `${e.event}@${at(e.at)}${e.event.startsWith('backend:') ? JSON.stringify(e.info) : ''}`)
        .join(' ');
    return this.log
      .overlaps()
      .slice(0, limit)
      .map(
        ([x, y]) =>
          `p${x.partition}: ${x.member} ${at(x.start)}-${at(x.end)} and ${y.member} ${at(y.start)}-${at(y.end)}; ` +
          `${x.member}: ${story(x.member)}; ${y.member}: ${story(y.member)}`,
      );
  }

  /** Errors other than the retriable backend ones that a fault is expected to cause. */
  unexpectedErrors(): string[] {
    return this.errors
      .filter(({ error }) => !(error.retriable && error.code === 'ERR_BACKEND'))
      .map(({ member, error }) => `${member}: ${error.code} ${error.message}`);
  }

  async closeAll(): Promise<void> {
    await Promise.allSettled([...this.members.values()].map((m) => m.consumer.close()));
    await Promise.allSettled(this.runs);
  }
}

/** What {@link newFaultCase} needs: where to make the topic, and the backend of each member. */
export interface FaultCaseOptions {
  /** The spec's `topics()`, which deletes the topic after the run. */
  readonly topics: { create(prefix: string, partitions: number): Promise<string> };
  readonly topicPrefix: string;
  readonly partitions: number;
  /** The server the members' backends connect to, until `useHosts` says otherwise. */
  readonly hosts: string;
  /** A backend on `hosts`, for each member the group adds. */
  makeBackend(hosts: string): AllocatorBackend;
}

/** One case of a group fault test: a fresh topic, a group of members on it, and a producer for it (not started). */
export interface FaultCase {
  readonly topic: string;
  readonly group: FaultGroup;
  readonly producer: ContinuousProducer;
  /** Backends made after this call connect to `next` (a proxy in front of the server, say). */
  useHosts(next: string): void;
}

/** A fresh {@link FaultCase}: its producer sends 12 messages every 20 ms, over every partition. */
export async function newFaultCase(o: FaultCaseOptions): Promise<FaultCase> {
  const topic = await o.topics.create(o.topicPrefix, o.partitions);
  let hosts = o.hosts;
  return {
    topic,
    group: new FaultGroup(topic, o.partitions, () => o.makeBackend(hosts)),
    producer: new ContinuousProducer(topic, o.partitions, 12, 20),
    useHosts: (next) => {
      hosts = next;
    },
  };
}

/** Stops the producer, waits until every produced message is handled, closes the members. */
export async function drainGroup(group: FaultGroup, producer: ContinuousProducer): Promise<void> {
  await producer.stop();
  await waitFor('every produced message to be handled', () => group.log.complete(producer.produced), 20_000);
  await group.closeAll();
}

/** What {@link expectKilledMemberMoves} needs: a fresh group and producer, and how to start a child member. */
export interface KilledMemberCase {
  readonly group: FaultGroup;
  readonly producer: ContinuousProducer;
  readonly partitions: number;
  /** The backend package's `test/fixtures/group-member-process.js`. */
  readonly fixture: string;
  /** The child's backend settings (hosts, namespace, sessionTimeout). */
  readonly child: Pick<ChildMemberConfig, 'hosts' | 'namespace' | 'sessionTimeout'>;
  /** The session timeout (ZooKeeper) or lease TTL (etcd) the child has, ms. */
  readonly sessionMs: number;
}

/**
 * A member process killed with SIGKILL while messages flow, beside two members in this process: its partitions move
 * once the server ends its session (one session timeout after its last heartbeat, within a second either way), the
 * survivors' own partitions never stall, nothing is lost, never two owners, and only what the child handled after
 * its last commit is handled again.
 */
export async function expectKilledMemberMoves(c: KilledMemberCase): Promise<void> {
  const { group, producer } = c;
  await producer.start();
  let killedAt = 0;
  let childOwned: number[] = [];
  let movedAt: number[] = [];
  let member: ChildMember | undefined;
  try {
    await group.add('a');
    await group.add('b');
    member = group.addChild('child', c.fixture, c.child);
    const { child, exited } = member;
    await waitFor(
      'the child to own partitions',
      () => {
        // A child that died at start (a missing or stale build of @kiel/consumer) says why, at once.
        member!.assertAlive();
        return (group.remote.get('child')?.assignment.length ?? 0) > 0;
      },
      20_000,
    );
    await group.stable();
    await sleep(500);
    childOwned = member.partitions;
    killedAt = wallClock();
    child.kill('SIGKILL');
    await exited;
    group.remote.delete('child');
    await waitFor('the survivors to own every partition', () => group.isStable(), 10_000);
    await waitFor(
      'every partition of the killed member to deliver to a survivor',
      () =>
        childOwned.every((p) =>
          group.log.intervals.some((i) => i.partition === p && i.member !== 'child' && i.start > killedAt),
        ),
      10_000,
    );
    movedAt = childOwned.map((p) =>
      Math.min(
        ...group.log.intervals
          .filter((i) => i.partition === p && i.member !== 'child' && i.start > killedAt)
          .map((i) => i.start),
      ),
    );
    await sleep(500);
  } finally {
    member?.child.kill('SIGKILL');
    await member?.exited;
    await drainGroup(group, producer);
  }
  expect(member!.stderr).toBe('');
  expect(childOwned.length).toBeGreaterThan(0);
  const moved = movedAt.map((at) => at - killedAt);
  expect(Math.min(...moved)).toBeGreaterThanOrEqual(c.sessionMs - 1_000);
  expect(Math.max(...moved)).toBeLessThan(c.sessionMs + 2_000);
  // The survivors' own partitions never stalled, from before the kill until after the handoff.
  const survivors = [...Array(c.partitions).keys()].filter((p) => !childOwned.includes(p));
  const gaps = group.longestGaps(survivors, killedAt - 200, Math.max(...movedAt) + 300);
  expect([...gaps.entries()].filter(([, gap]) => gap >= 1_000)).toEqual([]);
  expect(group.log.lost(producer.produced)).toEqual([]);
  expect(group.log.overlaps()).toEqual([]);
  // Redelivered: only what the child handled after its last commit.
  expect(group.unexplainedDuplicates()).toEqual([]);
  expect(group.log.duplicates().every((d) => d.members[0] === 'child')).toBe(true);
  expect(group.unexpectedErrors()).toEqual([]);
}
