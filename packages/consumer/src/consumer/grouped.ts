import { ListOffsetsTimestamp } from '@kiel/protocol';
import { listOffset } from '../fetch/fetcher';
import { naive, strategies, type Strategy, type StrategyName } from '@kiel/allocators';
import type { AllocatorBackend } from '../backend/types';
import { KielError, invalidConfig, isKielError } from '../errors';
import {
  PartitionAllocator,
  type PartitionAllocatorEvents,
  type PartitionAllocatorObserver,
  type TopicPartition,
} from '../group/partition-allocator';
import {
  closeSpan,
  commitChannel,
  fenceChannel,
  handoffChannel,
  openSpan,
  rebalanceChannel,
  type FenceTraceContext,
  type RebalanceTraceContext,
} from '../diagnostics';
import type { GroupedConsumerMetrics } from '../metrics';
import { OffsetStore, type PartitionOffset } from '../group/offsets';
import {
  giveUpPeriod,
  inheritRange,
  lossesAt,
  parseMarker,
  resolvePoison,
  resolveStall,
  type InheritedRange,
  type PartitionMarker,
  type PoisonOptions,
  type StallAction,
} from '../group/marker';
import { parsePartitionId, partitionId } from '../partition-id';
import { BaseConsumer, type ConsumerEvents, type MessageGuard } from './base';
import type { BaseConsumerOptions, Batch, Message } from './options';

/** Options of a {@link GroupedConsumer}: kiel's constructor, plus what a production group needs. */
export interface GroupedConsumerOptions<V> extends BaseConsumerOptions<V> {
  /** The group id: the allocation group in the backend, and the Kafka group that holds the offsets. */
  readonly group: string;
  /** Where members meet: ZooKeeperBackend, EtcdBackend, MemoryBackend or any AllocatorBackend. */
  readonly backend: AllocatorBackend;
  /** Topics this member consumes from the start; `consume(topic)` also adds topics to the group's set. */
  readonly topics?: readonly string[];
  /** The allocation strategy: a name from @kiel/allocators or a function. Default `naive` (kiel's). */
  readonly strategy?: StrategyName | Strategy;
  /** This member's capacity, for weighted strategies. Default 1. */
  readonly weight?: number;
  /**
   * Commit handled positions automatically: what `consume()` returned, when it is called again (awaited); in the
   * background after each batch of `run()` or the iterator, and every second within a long `eachMessage` batch (at
   * most one commit in flight). Always on revocation and close. Default true.
   */
  readonly autocommit?: boolean;
  /**
   * The backend's session timeout or lease TTL in ms, used for the default fencing timeout. Default: what the
   * backend reports (`backend.sessionTimeout`).
   */
  readonly sessionTimeout?: number;
  /**
   * ms without contact with the backend after which this member stops fetching and handing out messages, so it
   * stops before its claims can expire. Must be below the session timeout. Default 2/3 of it.
   */
  readonly fencingTimeout?: number;
  /** After the session or lease is lost: rejoin as a new member (default) or report a fatal error. */
  readonly rejoin?: boolean;
  /**
   * How long a handoff waits for a handler still running on a revoked partition, ms. Past it the member reports
   * ERR_HANDLER_TIMEOUT, commits only what was handled and lets the partition go, so that one stuck handler never
   * holds a partition (or the group's rebalance) forever. The late handler's result is then ignored. Default
   * 300 000 (Kafka's `max.poll.interval.ms`).
   */
  readonly handlerTimeout?: number;
  /**
   * A stable name for this member that survives restarts (Kafka's `group.instance.id`): the member id, and the key of
   * its partitions in the allocation, so a member that comes back under the same name gets the same partitions. Up
   * to 249 characters of `a-z A-Z 0-9 . _ -`. Two live members with one name: the later one's `connect()` is refused
   * with ERR_DUPLICATE_INSTANCE, after waiting up to one session timeout (plus 2 s) for the other to go, since that
   * may be its own previous incarnation, killed before its session ended. Default: none (a new id on every start).
   */
  readonly instanceId?: string;
  /**
   * As leader: when the session of a named member (`instanceId`) ends, wait up to this long for it to come back
   * before moving its partitions, ms. Its partitions are idle meanwhile (`kiel allocation` shows them as waiting).
   * `close()` still moves them at once; `close({ restarting: true })` waits. Members without a name are never waited
   * for. Default 0. Give every member the same value: the leader's is the one in force.
   */
  readonly rebalanceDelay?: number;
  /**
   * As leader of a group that starts (no allocation yet, or none of its members is live): publish the first
   * allocation once no member has joined for this long, ms, and at the latest 10 times this long after taking the
   * lead, so that members starting together get one allocation instead of one per join (Kafka's
   * `group.initial.rebalance.delay.ms`, 3 s on a broker). Partitions wait meanwhile. Default 0 (at once).
   */
  readonly initialRebalanceDelay?: number;
  /**
   * As leader: move at most this many partitions from one live member to another per generation, and publish the
   * next step once those handoffs are done (or after 10 s), so that many members starting at once do not all hand
   * off together. Partitions without a live owner (new ones, those of members gone) never count and are placed at
   * once. Default: unlimited.
   */
  readonly maxMovesPerRebalance?: number;
  /**
   * A partition whose `run()` handler has made no progress (no message handled, no new handler call) for this long,
   * ms, is reported: a `stalled` event, and the partition's marker in the backend, which `kiel allocation` shows.
   * Default: off. At least 100.
   */
  readonly stallTimeout?: number;
  /**
   * What to do with a stalled partition: `'report'` (default) only reports it; `'handoff'` also gives up that one
   * partition, as a revocation does (stop fetching it, wait up to `stallTimeout` more for the handler, commit what
   * was handled, release the claim), and keeps away from it for `max(30 s, 2 × stallTimeout)` while the leader gives
   * it to another live member. The member's other partitions keep flowing. Needs `stallTimeout`.
   */
  readonly stallAction?: StallAction;
  /**
   * Poison-message detection: before `run()` hands out a batch, the member records in the backend which offsets of
   * the partition it is working on. A message that was in flight at `maxAttempts` consecutive session losses (the
   * process crashed, was killed or lost its session every time it handled it) is not handed to the application again:
   * the next owner calls `onPoison(message, attempts)` and commits past it. Default: off.
   */
  readonly poison?: PoisonOptions<Message<V>>;
}

/** Options of {@link GroupedConsumer.close}. */
export interface CloseOptions {
  /**
   * This member comes back soon under the same `instanceId`: hand its partitions back (commit, release) but do not
   * tell the leader it left, so that they wait `rebalanceDelay` for it instead of moving. Without an `instanceId`
   * it changes nothing.
   */
  readonly restarting?: boolean;
}

/** Kafka's rule for `group.instance.id`: 1 to 249 of these characters. */
const INSTANCE_ID = /^[a-zA-Z0-9._-]{1,249}$/;

/** Events of a GroupedConsumer: a consumer's, the coordination's, and commits. */
export interface GroupedConsumerEvents extends ConsumerEvents {
  /** This member applied a new allocation: generation, partitions gained and lost, handoff time. */
  rebalance: PartitionAllocatorEvents['rebalance'];
  /** Ownership can no longer be trusted (backend unreachable past the fencing timeout): processing is paused. */
  fenced: PartitionAllocatorEvents['fenced'];
  /** Contact is back with the same session: processing resumes. */
  unfenced: PartitionAllocatorEvents['unfenced'];
  /** The session is gone and every partition with it; the member rejoins (unless `rejoin: false`). */
  lost: PartitionAllocatorEvents['lost'];
  /** Joined again as a new member after a lost session. */
  rejoined: PartitionAllocatorEvents['rejoined'];
  /** Offsets were committed. */
  commit: [info: { offsets: PartitionOffset[] }];
  /**
   * A partition's `run()` handler made no progress for `stallTimeout`: `offset` is the message it is stuck on (the
   * first one not handled), `stalledMs` the time since its last progress, `action` what the member does about it
   * (`stallAction`). Once per stall. Alert on it; with `'handoff'` the partition goes to another member.
   */
  stalled: [info: { topic: string; partition: number; offset: number; stalledMs: number; action: StallAction }];
}

/** How often autocommit commits in the middle of a long `eachMessage` batch, ms. */
const AUTOCOMMIT_INTERVAL = 1000;

/**
 * A consumer that shares the partitions of its topics with the other members of its group through a
 * coordination backend (ZooKeeper, etcd, memory), not Kafka's group protocol. Offsets live in Kafka. Handoffs
 * commit before they release and claim before they fetch, so a graceful membership change neither loses nor
 * duplicates a message, and no two members ever handle the same partition at the same time.
 *
 * The group id must not be shared with a native Kafka consumer group: Kafka refuses simple-consumer commits to a
 * group with native members (reported as ERR_GROUP_ID_CONFLICT).
 *
 * @example
 * import { GroupedConsumer, MemoryBackend, MemoryStore } from '@kiel/consumer';
 *
 * const consumer = new GroupedConsumer({
 *   brokers: ['127.0.0.1:9092'],
 *   group: 'billing',
 *   topics: ['orders'],
 *   backend: new MemoryBackend({ store: new MemoryStore() }),
 * });
 * await consumer.run({ eachMessage: async (m) => console.log(m.partition, m.offset, m.value) });
 */
export class GroupedConsumer<V = unknown> extends BaseConsumer<V, GroupedConsumerEvents> {
  readonly group: string;
  private readonly allocator: PartitionAllocator;
  private readonly autocommit: boolean;
  private readonly initialTopics: readonly string[];
  private readonly topicPartitionCounts = new Map<string, number>();
  private offsets!: OffsetStore;
  /** The last committed offset per partition (`topic:partition`), to commit only what advanced. */
  private readonly committed = new Map<string, number>();
  /** Commits in flight and the partitions each carries: a revocation waits for those that carry its partition. */
  private readonly commitsInFlight = new Map<Promise<unknown>, ReadonlySet<string>>();
  /** Partitions being revoked: background commits leave them to the revocation's own commit. */
  private readonly revoking = new Set<string>();
  private readonly backend: AllocatorBackend;
  private readonly handlerTimeout: number;
  private committing: Promise<void> | undefined;
  /** When the last background commit started (performance.now()). */
  private lastCommitStarted = 0;
  /** Handoff commits gathered in this turn of the event loop, sent together. */
  private handoffCommit: { offsets: PartitionOffset[]; done: Promise<void> } | undefined;
  private commitAgain = false;
  private metadataTimer: NodeJS.Timeout | undefined;
  /** close({ restarting: true }) was asked for. */
  private restarting = false;
  /** Open spans of the rebalance and fence channels (only while someone subscribes). */
  private rebalanceSpan: RebalanceTraceContext | undefined;
  private fenceSpan: { context: FenceTraceContext; started: number; lost: boolean } | undefined;
  private readonly stall: { timeout: number; action: StallAction } | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  /** Per partition with a handler running: its last progress, and whether its stall was reported. */
  private readonly progress = new Map<
    string,
    { startedAt: number; offset: number; since: number; reported: boolean }
  >();
  /** Partitions being given up (stalled, handed off): their revocation waits at most `stallTimeout`. */
  private readonly givingUp = new Set<string>();
  private readonly poison: { maxAttempts: number; onPoison: PoisonOptions<Message<V>>['onPoison'] } | undefined;
  /** Per owned partition: offsets in flight at consecutive session losses before this member took it. */
  private readonly inherited = new Map<string, InheritedRange>();
  /** Per owned partition: the marker this member wrote last. */
  private readonly markerWritten = new Map<string, PartitionMarker>();

  constructor(options: GroupedConsumerOptions<V>) {
    super(options);
    if (typeof options.group !== 'string' || options.group === '' || /[/\0]/.test(options.group)) {
      throw invalidConfig('group', 'expected a non-empty string without "/"');
    }
    const backend = options.backend;
    if (!backend || typeof backend.join !== 'function' || typeof backend.claim !== 'function') {
      throw invalidConfig(
        'backend',
        'expected an AllocatorBackend (ZooKeeperBackend, EtcdBackend, MemoryBackend, ...)',
      );
    }
    let strategy: Strategy;
    let strategyName: string;
    if (options.strategy === undefined) {
      strategy = naive;
      strategyName = 'naive';
    } else if (typeof options.strategy === 'function') {
      strategy = options.strategy;
      strategyName = options.strategy.name || 'custom';
    } else if (typeof options.strategy === 'string' && options.strategy in strategies) {
      strategy = strategies[options.strategy];
      strategyName = options.strategy;
    } else {
      throw invalidConfig('strategy', `expected a function or one of ${Object.keys(strategies).join(', ')}`);
    }
    if (
      options.weight !== undefined &&
      !(typeof options.weight === 'number' && Number.isFinite(options.weight) && options.weight > 0)
    ) {
      throw invalidConfig('weight', 'expected a positive finite number');
    }
    const sessionTimeout = options.sessionTimeout;
    if (sessionTimeout !== undefined && !(Number.isInteger(sessionTimeout) && sessionTimeout > 0)) {
      throw invalidConfig('sessionTimeout', 'expected a positive integer (ms)');
    }
    const fencingTimeout =
      options.fencingTimeout ?? (sessionTimeout !== undefined ? Math.floor((sessionTimeout * 2) / 3) : undefined);
    if (fencingTimeout !== undefined && !(Number.isInteger(fencingTimeout) && fencingTimeout > 0)) {
      throw invalidConfig('fencingTimeout', 'expected a positive integer (ms)');
    }
    if (fencingTimeout !== undefined && sessionTimeout !== undefined && fencingTimeout >= sessionTimeout) {
      throw invalidConfig(
        'fencingTimeout',
        `must be below sessionTimeout (${sessionTimeout} ms), or a member could outlive its claims`,
      );
    }
    if (
      options.topics !== undefined &&
      (!Array.isArray(options.topics) || options.topics.some((t) => typeof t !== 'string' || t === ''))
    ) {
      throw invalidConfig('topics', 'expected an array of non-empty topic names');
    }
    if (
      options.instanceId !== undefined &&
      !(typeof options.instanceId === 'string' && INSTANCE_ID.test(options.instanceId))
    ) {
      throw invalidConfig(
        'instanceId',
        `expected 1 to 249 characters of a-z, A-Z, 0-9, ".", "_" and "-", got ${JSON.stringify(options.instanceId)}`,
      );
    }
    const rebalanceDelay = options.rebalanceDelay ?? 0;
    if (!(Number.isInteger(rebalanceDelay) && rebalanceDelay >= 0 && rebalanceDelay <= 0x7fffffff)) {
      throw invalidConfig('rebalanceDelay', `expected an integer from 0 to ${0x7fffffff} (ms)`);
    }
    const initialRebalanceDelay = options.initialRebalanceDelay ?? 0;
    if (!(Number.isInteger(initialRebalanceDelay) && initialRebalanceDelay >= 0 && initialRebalanceDelay <= 600_000)) {
      throw invalidConfig('initialRebalanceDelay', 'expected an integer from 0 to 600000 (ms)');
    }
    const maxMoves = options.maxMovesPerRebalance;
    if (maxMoves !== undefined && !(Number.isInteger(maxMoves) && maxMoves >= 1)) {
      throw invalidConfig('maxMovesPerRebalance', 'expected a positive integer');
    }
    const handlerTimeout = options.handlerTimeout ?? 300_000;
    if (!(Number.isInteger(handlerTimeout) && handlerTimeout > 0)) {
      throw invalidConfig('handlerTimeout', 'expected a positive integer (ms)');
    }
    this.handlerTimeout = handlerTimeout;
    this.stall = resolveStall(options.stallTimeout, options.stallAction);
    this.poison = resolvePoison(options.poison);
    if (this.poison) this.batchGuard = (batch) => this.guardBatch(batch);
    if (this.stall) this.tracksHandlers = true;
    this.backend = backend;
    this.group = options.group;
    this.origin.group = options.group;
    this.autocommit = options.autocommit ?? true;
    this.initialTopics = options.topics ?? [];
    this.allocator = new PartitionAllocator({
      backend,
      group: options.group,
      strategy,
      strategyName,
      fencingTimeout,
      rejoin: options.rejoin ?? true,
      ...(options.weight !== undefined ? { weight: options.weight } : {}),
      ...(options.instanceId !== undefined ? { instanceId: options.instanceId } : {}),
      rebalanceDelay,
      initialRebalanceDelay,
      ...(maxMoves !== undefined ? { maxMovesPerRebalance: maxMoves } : {}),
      hooks: {
        revoke: (partitions) => this.revokePartitions(partitions),
        assign: (partitions) => this.assignPartitions(partitions),
        drop: (partitions) => this.dropPartitions(partitions),
        fence: (fenced) => this.fence(fenced),
      },
      observer: this.observer(),
    });
    const forward = <K extends keyof PartitionAllocatorEvents>(event: K) =>
      this.allocator.on(event, ((...args: unknown[]) =>
        (this.emit as (e: string, ...a: unknown[]) => boolean)(event, ...args)) as never);
    forward('rebalance');
    forward('fenced');
    forward('unfenced');
    forward('lost');
    forward('rejoined');
    this.allocator.on('error', (err) => this.reportError(err));
    this.allocator.on('rebalance', (info) => {
      const now = performance.now();
      this.stats.rebalances.record(info.durationMs, now);
      this.stats.lastRebalanceAt = now;
      const span = this.rebalanceSpan;
      if (span) {
        this.rebalanceSpan = undefined;
        span.result = info;
        closeSpan(rebalanceChannel, span);
      }
    });
    this.allocator.on('fenced', ({ reason }) => {
      if (!fenceChannel.hasSubscribers || this.fenceSpan) return;
      this.fenceSpan = {
        context: openSpan(fenceChannel, { ...this.origin, memberId: this.memberId, reason }),
        started: performance.now(),
        lost: false,
      };
    });
    this.allocator.on('lost', () => {
      if (this.fenceSpan) this.fenceSpan.lost = true;
    });
  }

  /**
   * A snapshot of this member's figures: the consumer's (see {@link BaseConsumer.metrics}) and the group's, under the
   * Java consumer's names where it has one (`commit-latency-avg`, `rebalance-latency-max`,
   * `last-rebalance-seconds-ago`, ...) and ours for what it lacks (fencing, handoff per partition, claim wait,
   * backend round trip). See {@link GroupedConsumerMetrics}.
   */
  override metrics(): GroupedConsumerMetrics {
    const base = super.metrics();
    const now = performance.now();
    const s = this.stats;
    const started = this.allocatorStarted;
    return {
      ...base,
      'assigned-partitions': started ? this.allocator.ownedPartitions.length : 0,
      partitions: base.partitions.map((p) => ({
        ...p,
        'last-handoff-ms': s.partitions.get(`${p.topic}\u0000${p.partition}`)?.lastHandoffMs ?? NaN,
      })),
      group: this.group,
      'member-id': started ? this.memberId : '',
      generation: this.generation,
      leader: this.isLeader,
      'commit-rate': s.commits.countRate(now),
      'commit-total': s.commits.totalCount,
      'commit-latency-avg': s.commits.avg(now),
      'commit-latency-max': s.commits.max(now),
      'rebalance-total': s.rebalances.totalCount,
      'rebalance-rate-per-hour': s.rebalances.countRate(now, 3_600_000),
      'rebalance-latency-avg': s.rebalances.avg(now),
      'rebalance-latency-max': s.rebalances.max(now),
      'rebalance-latency-total': s.rebalances.totalSum,
      'last-rebalance-seconds-ago': s.lastRebalanceAt < 0 ? -1 : Math.floor((now - s.lastRebalanceAt) / 1000),
      fenced: s.fencedSince >= 0,
      'fenced-time-total': s.fencedMs(now),
      'fenced-total': s.fencedCount,
      'partition-handoff-latency-avg': s.handoffs.avg(now),
      'partition-handoff-latency-max': s.handoffs.max(now),
      'claim-wait-avg': s.claimWaits.avg(now),
      'claim-wait-max': s.claimWaits.max(now),
      'claim-wait-total': s.claimWaits.totalSum,
      'backend-latency-avg': s.backendCalls.avg(now),
      'backend-latency-max': s.backendCalls.max(now),
      'backend-last-contact-ms-ago': started ? Math.max(0, now - this.backend.lastContact) : NaN,
    };
  }

  /** Whether the partition allocator has joined once (its member id exists). */
  private get allocatorStarted(): boolean {
    return this.allocator.hasIdentity;
  }

  /** The partition allocator's timing hooks: metrics always, the rebalance and handoff channels while subscribed. */
  private observer(): PartitionAllocatorObserver {
    return {
      handoffStarted: (generation) => {
        const open = this.rebalanceSpan;
        if (open) {
          // Superseded before it was applied: one span covers both, reported with the newer generation.
          open.generation = generation;
          return;
        }
        if (!rebalanceChannel.hasSubscribers) return;
        this.rebalanceSpan = openSpan(rebalanceChannel, { ...this.origin, memberId: this.memberId, generation });
      },
      partitionHandoff: (id, direction, generation) => {
        const started = performance.now();
        const { topic, partition } = parsePartitionId(id);
        const span = handoffChannel.hasSubscribers
          ? openSpan(handoffChannel, {
              ...this.origin,
              memberId: this.memberId,
              generation,
              topic,
              partition,
              direction,
            })
          : undefined;
        return (outcome, claimWaitMs, error) => {
          const now = performance.now();
          const durationMs = now - started;
          if (outcome === 'done') {
            this.stats.handoffs.record(durationMs, now);
            if (direction === 'assign') {
              this.stats.claimWaits.record(claimWaitMs, now);
              this.stats.partition(`${topic}\u0000${partition}`).lastHandoffMs = durationMs;
            }
          }
          if (span) {
            if (outcome === 'failed') span.error = error ?? new Error('handoff failed');
            else span.result = { outcome, durationMs, claimWaitMs };
            closeSpan(handoffChannel, span);
          }
        };
      },
      backendCall: (ms) => this.stats.backendCalls.record(ms, performance.now()),
    };
  }

  /**
   * This member's id in the group (new after a rejoin): its `instanceId`, or the id made at `connect()`; an empty
   * string before the first `connect()` of a member without an `instanceId`.
   */
  get memberId(): string {
    return this.allocator.memberId;
  }

  /** The generation of the allocation this member follows (-1 before the first). */
  get generation(): number {
    return this.allocator.currentGeneration;
  }

  /** The partitions (`topic:partition`) this member owns now. */
  get assignment(): string[] {
    return this.allocator.ownedPartitions;
  }

  /** Whether the group is frozen (see `freezeGroup`): its leader publishes no new allocation. */
  get isFrozen(): boolean {
    return this.allocator.isFrozen;
  }

  /** Whether this member is the group's leader. */
  get isLeader(): boolean {
    return this.allocator.isLeader;
  }

  /**
   * Commits the handled position of every owned partition that advanced since its last commit. Retriable errors
   * heal and retry; NOT_COORDINATOR finds the coordinator again; metadata that is too large is dropped.
   */
  async commitOffsets(metadata?: string): Promise<void> {
    // What consume() returned counts as handled once the application commits.
    this.settleConsumed();
    const offsets: PartitionOffset[] = [];
    for (const p of this.positions.values()) {
      const id = partitionId(p.topic, p.partition);
      if (!this.allocator.isOwned(id) || this.revoking.has(id) || this.committed.get(id) === p.offset) continue;
      offsets.push({ topic: p.topic, partition: p.partition, offset: p.offset });
    }
    // Partitions a revocation took over meanwhile are left to its own commit.
    await this.commit(offsets, metadata, (o) => !this.revoking.has(partitionId(o.topic, o.partition)));
  }

  protected async onConnect(): Promise<void> {
    this.offsets = new OffsetStore(this.cluster, this.group, `kiel ${this.group}`);
    // Find the coordinator before joining, so that a Kafka problem surfaces before partitions are taken.
    await this.offsets.findCoordinator();
    // A topic that does not exist fails the connect before joining, too.
    const counts = await this.partitionCounts(this.initialTopics);
    await this.allocator.start();
    try {
      await this.addPartitions(counts);
    } catch (err) {
      // Leave again, so that a member that never started holds no partitions; a later connect() joins anew.
      await this.allocator.stop({ closeBackend: false });
      throw err;
    }
    this.cluster.on('metadata', () => {
      void this.noticeGrowth();
      void this.noticeDeletion();
    });
    this.fetcher.on('reset', ({ topic, partition, from, to }) => this.positionReset(topic, partition, from, to));
    this.metadataTimer = setInterval(
      () => void this.cluster.refreshMetadata().catch(() => undefined),
      this.options.metadataMaxAge,
    );
    this.metadataTimer.unref();
    if (this.stall) {
      this.stallTimer = setInterval(() => this.checkStalls(), Math.max(50, Math.min(1_000, this.stall.timeout / 4)));
      this.stallTimer.unref();
    }
  }

  protected override async onConsume(topic: string): Promise<void> {
    if (!this.topicPartitionCounts.has(topic)) await this.addTopics([topic]);
  }

  protected override async afterConsume(): Promise<void> {
    if (this.autocommit) await this.commitOffsets();
  }

  protected override async afterBatch(_batch: Batch<V>): Promise<void> {
    if (this.autocommit) this.scheduleCommit();
  }

  /** A long `eachMessage` batch also commits what it handled, every AUTOCOMMIT_INTERVAL, so a crash redelivers less. */
  protected override duringBatch(): void {
    if (this.autocommit && performance.now() - this.lastCommitStarted >= AUTOCOMMIT_INTERVAL) this.scheduleCommit();
  }

  protected override mayHandOut(topic: string, partition: number): boolean {
    return (
      this.allocator.isOwned(partitionId(topic, partition)) &&
      !this.allocator.isFenced &&
      !this.clockStale(performance.now())
    );
  }

  protected override clockStale(now: number): boolean {
    return now - this.backend.lastContact > this.allocator.fencingTimeout;
  }

  protected override onStale(): void {
    this.allocator.checkFence();
  }

  protected override get fences(): boolean {
    return true;
  }

  /** A twentieth of the fencing timeout (at most 50 ms): heartbeats go out long before the clock runs out. */
  protected override get yieldInterval(): number {
    return Math.max(1, Math.min(super.yieldInterval, Math.floor(this.allocator.fencingTimeout / 20)));
  }

  /**
   * Stops consuming, lets running handlers finish, commits and releases every partition, leaves the group and closes
   * every connection. With `{ restarting: true }` a named member's partitions wait `rebalanceDelay` for it to come
   * back instead of moving at once. Idempotent.
   */
  override async close(options: CloseOptions = {}): Promise<void> {
    if (options.restarting === true) this.restarting = true;
    await super.close();
  }

  protected override async onClose(): Promise<void> {
    clearInterval(this.metadataTimer);
    clearInterval(this.stallTimer);
    await this.committing?.catch(() => undefined);
    // Graceful leave: every owned partition is committed, then released; then the member entry goes.
    await this.allocator.stop({ restarting: this.restarting });
    this.stats.fence(false, performance.now());
    this.endFenceSpan(true);
  }

  private async addTopics(topics: readonly string[]): Promise<void> {
    await this.addPartitions(await this.partitionCounts(topics));
  }

  /** The partition counts of the topics not in the group's set yet; fails on a topic that does not exist. */
  private async partitionCounts(topics: readonly string[]): Promise<Map<string, number>> {
    const fresh = topics.filter((t) => !this.topicPartitionCounts.has(t));
    const counts = new Map<string, number>();
    if (fresh.length === 0) return counts;
    await this.cluster.track(fresh);
    for (const topic of fresh) {
      let partitions = this.cluster.partitions(topic);
      for (let i = 0; !partitions && i < 50; i++) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        await this.cluster.refreshMetadata();
        partitions = this.cluster.partitions(topic);
      }
      if (!partitions) {
        throw new KielError('ERR_UNKNOWN_TOPIC', `topic ${topic} does not exist`, { location: topic });
      }
      counts.set(topic, partitions.length);
    }
    return counts;
  }

  /**
   * Adds topics' partitions beyond those known to the group's set, and counts them as known only once that worked:
   * a failure is tried again by the next call (the next metadata refresh, for a topic that grew).
   */
  private async addPartitions(counts: ReadonlyMap<string, number>): Promise<void> {
    const ids: string[] = [];
    for (const [topic, count] of counts) {
      for (let p = this.topicPartitionCounts.get(topic) ?? 0; p < count; p++) ids.push(partitionId(topic, p));
    }
    if (ids.length === 0) return;
    await this.allocator.addPartitions(ids);
    for (const [topic, count] of counts) {
      if (count > (this.topicPartitionCounts.get(topic) ?? 0)) this.topicPartitionCounts.set(topic, count);
    }
  }

  /**
   * A topic deleted: its partitions leave the group's set, so the leader stops assigning them and their owners hand
   * them back (their final commits are skipped: Kafka refuses offsets of a topic it no longer has).
   */
  private async noticeDeletion(): Promise<void> {
    for (const [topic, count] of this.topicPartitionCounts) {
      if (!this.cluster.isUnknown(topic)) continue;
      this.topicPartitionCounts.delete(topic);
      try {
        await this.allocator.removePartitions([...Array(count).keys()].map((p) => partitionId(topic, p)));
        this.reportError(
          new KielError('ERR_UNKNOWN_TOPIC', `topic ${topic} was deleted: its partitions left group ${this.group}`, {
            location: topic,
          }),
        );
      } catch (err) {
        // Tried again on the next metadata refresh.
        this.topicPartitionCounts.set(topic, count);
        this.reportError(isKielError(err) ? err : new KielError('ERR_BACKEND', String(err), { cause: err }));
      }
    }
  }

  /** A topic that grew: its new partitions join the group's set. */
  private async noticeGrowth(): Promise<void> {
    const grown = new Map<string, number>();
    for (const [topic, known] of this.topicPartitionCounts) {
      const count = this.cluster.partitions(topic)?.length ?? 0;
      if (count > known) grown.set(topic, count);
    }
    await this.addPartitions(grown).catch((err: unknown) =>
      this.reportError(isKielError(err) ? err : new KielError('ERR_BACKEND', String(err), { cause: err })),
    );
  }

  // ---- handoff hooks -------------------------------------------------------------------------------------

  /**
   * Commit-before-release for revoked partitions: stop handing out and fetching them, wait for their handlers (at
   * most `handlerTimeout`) and for every commit in flight that carries them, then commit what was handled. Throws
   * (and the claims stay held, to be tried again) only for a retriable failure.
   */
  private async revokePartitions(partitions: TopicPartition[]): Promise<void> {
    const ids = partitions.map(({ topic, partition }) => partitionId(topic, partition));
    for (const id of ids) this.revoking.add(id);
    try {
      for (const { topic, partition } of partitions) {
        this.stopFetching(topic, partition, new KielError('ERR_REVOKED', `${topic}-${partition} is being handed off`));
      }
      await Promise.all(partitions.map((tp) => this.waitForHandler(tp)));
      await this.commitsCarrying(new Set(ids));
      const offsets: PartitionOffset[] = [];
      for (const { topic, partition } of partitions) {
        const position = this.positionOf(topic, partition);
        if (position !== undefined && this.committed.get(partitionId(topic, partition)) !== position) {
          offsets.push({ topic, partition, offset: position });
        }
      }
      try {
        // Commit-before-release: a retriable failure propagates and the claims stay held until it succeeds.
        await this.commitForHandoff(offsets);
      } catch (err) {
        if (!isKielError(err) || err.retriable) throw err;
        // Refused for good (a native group took the group id): holding the claim would stall the next owner
        // forever. It starts from the last commit instead: duplicates, nothing lost.
        this.reportError(err);
      }
      await Promise.all(partitions.map(({ topic, partition }) => this.settleMarker(topic, partition)));
      for (const { topic, partition } of partitions) this.forget(topic, partition);
    } finally {
      for (const id of ids) this.revoking.delete(id);
    }
  }

  /**
   * Commits for handoffs that reach this point in the same turn of the event loop travel in one OffsetCommit: the
   * coordinator revokes each partition on its own, and a rebalance that moves eight partitions should not cost eight
   * round trips.
   */
  private commitForHandoff(offsets: PartitionOffset[]): Promise<void> {
    if (offsets.length === 0) return Promise.resolve();
    let batch = this.handoffCommit;
    if (!batch) {
      const gathered: PartitionOffset[] = [];
      const done = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
        this.handoffCommit = undefined;
        return this.commit(gathered);
      });
      batch = this.handoffCommit = { offsets: gathered, done };
    }
    batch.offsets.push(...offsets);
    return batch.done;
  }

  /**
   * Waits for a revoked partition's handler, at most `handlerTimeout` (`stallTimeout` for a stalled partition given
   * up); past it, reports and lets it go, and the handler loop goes on without it.
   */
  private async waitForHandler({ topic, partition }: TopicPartition): Promise<void> {
    const givingUp = this.givingUp.has(partitionId(topic, partition));
    const bound = givingUp ? Math.min(this.handlerTimeout, this.stall!.timeout) : this.handlerTimeout;
    if (await this.handlerDone(topic, partition, bound)) return;
    this.abandonHandler(topic, partition);
    this.reportError(
      new KielError(
        'ERR_HANDLER_TIMEOUT',
        `the handler of ${topic}-${partition} ran past ${givingUp ? 'stallTimeout' : 'handlerTimeout'} (${bound} ms) ` +
          `while the partition was being handed off: committing what was handled and letting it go; its result is ` +
          `ignored`,
        { location: `${topic}-${partition}` },
      ),
    );
  }

  // ---- stalled partitions --------------------------------------------------------------------------------

  /** Compares each running handler's progress with the last look; reports those stuck past `stallTimeout`. */
  private checkStalls(): void {
    const stall = this.stall!;
    const now = performance.now();
    const running = new Set<string>();
    for (const h of this.handlersRunning()) {
      const id = partitionId(h.topic, h.partition);
      running.add(id);
      const offset = this.positionOf(h.topic, h.partition) ?? h.firstOffset;
      const seen = this.progress.get(id);
      if (seen === undefined || seen.startedAt !== h.startedAt || seen.offset !== offset) {
        if (seen?.reported) this.unstalled(h.topic, h.partition);
        const since = seen !== undefined && seen.startedAt === h.startedAt ? now : h.startedAt;
        this.progress.set(id, { startedAt: h.startedAt, offset, since, reported: false });
        continue;
      }
      if (seen.reported || now - seen.since < stall.timeout) continue;
      seen.reported = true;
      this.stalled(h.topic, h.partition, offset, now - seen.since);
    }
    for (const [id, seen] of this.progress) {
      if (running.has(id)) continue;
      this.progress.delete(id);
      if (seen.reported && this.allocator.isOwned(id)) {
        const { topic, partition } = parsePartitionId(id);
        this.unstalled(topic, partition);
      }
    }
  }

  private stalled(topic: string, partition: number, offset: number, stalledMs: number): void {
    const id = partitionId(topic, partition);
    const action = this.stall!.action;
    const member = this.memberId;
    const marker: PartitionMarker = {
      ...(this.markerWritten.get(id) ?? { member }),
      stalled: { offset, since: Date.now() - Math.round(stalledMs), member },
    };
    void this.writeMarker(id, marker);
    this.emit('stalled', { topic, partition, offset, stalledMs, action });
    if (action === 'handoff' && this.allocator.isOwned(id)) {
      this.givingUp.add(id);
      this.allocator.giveUp(id, giveUpPeriod(this.stall!.timeout));
    }
  }

  /** Progress again after a stall was reported: the marker no longer says stalled. */
  private unstalled(topic: string, partition: number): void {
    const id = partitionId(topic, partition);
    const written = this.markerWritten.get(id);
    if (written?.stalled === undefined || this.givingUp.has(id)) return;
    const { stalled: _stalled, ...rest } = written;
    void this.writeMarker(id, rest.from === undefined ? null : rest);
  }

  // ---- poison messages -----------------------------------------------------------------------------------

  /**
   * Before a batch of `run()` reaches the handler: records its offsets as in flight in the partition's marker, or,
   * while the offsets a crashed owner had in flight are ahead, vets its messages one by one.
   */
  private async guardBatch(batch: Batch<V>): Promise<MessageGuard<V> | undefined> {
    const id = partitionId(batch.topic, batch.partition);
    const inherited = this.inherited.get(id);
    if (inherited !== undefined && batch.lastOffset >= inherited.from && batch.firstOffset <= inherited.to) {
      return this.carefulGuard(id, inherited);
    }
    if (inherited !== undefined && batch.firstOffset > inherited.to) this.inherited.delete(id);
    await this.writeMarker(id, { member: this.memberId, from: batch.firstOffset, to: batch.lastOffset, losses: 0 });
    return undefined;
  }

  /**
   * One message at a time: each is recorded as in flight (with the losses it already caused) before the handler sees
   * it, and one that reached `maxAttempts` goes to `onPoison` instead, then is committed past.
   */
  private carefulGuard(id: string, inherited: InheritedRange): MessageGuard<V> {
    const { maxAttempts, onPoison } = this.poison!;
    return {
      before: async (message) => {
        const losses = lossesAt(inherited, message.offset);
        if (losses >= maxAttempts) {
          await onPoison(message, losses);
          return 'skip';
        }
        if (message.offset >= inherited.to) this.inherited.delete(id);
        await this.writeMarker(id, { member: this.memberId, from: message.offset, to: message.offset, losses });
        return 'handle';
      },
      skipped: async (message) => {
        if (message.offset >= inherited.to) this.inherited.delete(id);
        await this.commitOffsets();
      },
    };
  }

  /** Writes a partition's marker; a failure is reported, and handling goes on (the marker is a hint, not a lock). */
  private async writeMarker(id: string, marker: PartitionMarker | null): Promise<void> {
    if (marker === null) this.markerWritten.delete(id);
    else this.markerWritten.set(id, marker);
    try {
      await this.backend.writeMarker(this.group, id, marker === null ? null : JSON.stringify(marker));
    } catch (err) {
      this.reportError(
        new KielError('ERR_BACKEND', `writing the marker of ${id} failed: ${(err as Error)?.message ?? err}`, {
          retriable: true,
          cause: err,
        }),
      );
    }
  }

  /**
   * A graceful handoff of a partition whose marker this member wrote (or whose crashed range it inherited): what is
   * still ahead of the crashed range is passed on as released (not a loss), anything else is deleted.
   */
  private async settleMarker(topic: string, partition: number): Promise<void> {
    const id = partitionId(topic, partition);
    const inherited = this.inherited.get(id);
    if (!this.markerWritten.has(id) && inherited === undefined) return;
    const position = this.positionOf(topic, partition) ?? -1;
    await this.writeMarker(
      id,
      inherited !== undefined && position <= inherited.to
        ? {
            member: this.memberId,
            from: Math.max(position, inherited.from),
            to: inherited.to,
            losses: inherited.losses,
            released: true,
          }
        : null,
    );
  }

  /** The crashed range a new owner inherits from the partition's marker, for a start at `start`. */
  private inheritFrom(id: string, text: string | null, start: number): void {
    let marker: PartitionMarker | null = null;
    if (text !== null) {
      try {
        marker = parseMarker(text, `${this.group}/markers/${id}`);
      } catch (err) {
        this.reportError(err as KielError);
      }
    }
    const inherited = inheritRange(marker, start);
    if (inherited !== undefined) this.inherited.set(id, inherited);
    else this.inherited.delete(id);
  }

  /** Resolves when no commit in flight carries any of `ids`. */
  private async commitsCarrying(ids: ReadonlySet<string>): Promise<void> {
    for (;;) {
      const carrying = [...this.commitsInFlight].filter(([, carried]) => [...carried].some((id) => ids.has(id)));
      if (carrying.length === 0) return;
      await Promise.allSettled(carrying.map(([commit]) => commit));
    }
  }

  private async assignPartitions(partitions: TopicPartition[]): Promise<void> {
    const committed = await this.offsets.fetch(partitions);
    // Nothing committed yet: offsetReset decides, and the position found is recorded (and committed on a handoff, as
    // the Java consumer does), so the next owner starts where this one did, not at a newer end.
    const policy = this.options.offsetReset === 'latest' ? ListOffsetsTimestamp.LATEST : ListOffsetsTimestamp.EARLIEST;
    const starts = await Promise.all(
      partitions.map(async ({ topic, partition }) => {
        const offset = committed.get(partitionId(topic, partition)) ?? -1;
        if (offset >= 0) return offset;
        return listOffset(this.cluster, topic, partition, policy, this.options.isolationLevel);
      }),
    );
    // Poison detection: what a crashed previous owner had in flight.
    const markers = this.poison
      ? await Promise.all(
          partitions.map(async ({ topic, partition }, i) => {
            const id = partitionId(topic, partition);
            const found = await this.backend.readMarker(this.group, id);
            return { id, found, start: starts[i]! };
          }),
        )
      : [];
    partitions.forEach(({ topic, partition }, i) => {
      const id = partitionId(topic, partition);
      // Lost or revoked while the offsets were being looked up: do not start.
      if (!this.allocator.isOwned(id)) return;
      // Whatever an earlier ownership of this partition left behind is not this one's.
      this.forget(topic, partition);
      const marker = markers[i];
      if (marker !== undefined) this.inheritFrom(marker.id, marker.found, marker.start);
      const offset = committed.get(id) ?? -1;
      if (offset >= 0) this.committed.set(id, offset);
      this.startFetching(topic, partition, starts[i]!, starts[i]!);
    });
  }

  private dropPartitions(partitions: TopicPartition[]): void {
    for (const { topic, partition } of partitions) {
      this.stopFetching(topic, partition, new KielError('ERR_FENCED', `${topic}-${partition} is no longer owned`));
      this.forget(topic, partition);
    }
  }

  private fence(fenced: boolean): void {
    this.stats.fence(fenced, performance.now());
    if (!fenced) this.endFenceSpan();
    this.setGate(fenced, new KielError('ERR_FENCED', `group member ${this.memberId} is fenced`));
  }

  private endFenceSpan(closed = false): void {
    const span = this.fenceSpan;
    if (!span) return;
    this.fenceSpan = undefined;
    span.context.result = {
      outcome: closed ? 'closed' : span.lost ? 'lost' : 'unfenced',
      durationMs: performance.now() - span.started,
    };
    closeSpan(fenceChannel, span.context);
  }

  private forget(topic: string, partition: number): void {
    this.forgetPosition(topic, partition);
    const id = partitionId(topic, partition);
    this.committed.delete(id);
    this.inherited.delete(id);
    this.markerWritten.delete(id);
    this.progress.delete(id);
    this.givingUp.delete(id);
  }

  // ---- commits -------------------------------------------------------------------------------------------

  private async commit(
    offsets: PartitionOffset[],
    metadata?: string,
    keep: (o: PartitionOffset) => boolean = () => true,
  ): Promise<void> {
    if (offsets.length === 0) return;
    // A clock gone stale only because this process was starved (a loaded machine, a long GC) comes back with the
    // next heartbeat: wait for it (at most the fencing timeout) rather than drop the commit.
    if (this.clockStale(performance.now())) await this.waitForContact();
    const send = () =>
      this.offsets.commit(offsets, {
        // Names the member (its id changes on rejoin), so that an observer can tell whose work a commit was.
        metadata: metadata ?? `committed by ${this.memberId}`,
        // Asked again right before each attempt goes out: drops partitions no longer owned and offsets committed
        // meanwhile, and everything while fenced or out of contact past the fencing timeout. Such a member may have
        // lost its session already (a process frozen past it: its partitions have a new owner, which read the
        // committed offset), and a late commit would move the group's offset under that owner. What stays
        // uncommitted is committed once contact returns with the session alive; if the session is lost, the next
        // owner handles it again (a duplicate, never a loss).
        keep: (o) => {
          const id = partitionId(o.topic, o.partition);
          // The rule that gates handing messages out gates their commit too.
          return this.mayHandOut(o.topic, o.partition) && this.committed.get(id) !== o.offset && keep(o);
        },
      });
    const started = performance.now();
    const commit = commitChannel.hasSubscribers
      ? commitChannel.tracePromise(send, { ...this.origin, offsets })
      : send();
    void commit.then(
      () => this.stats.commits.record(performance.now() - started, performance.now()),
      () => undefined,
    );
    this.commitsInFlight.set(commit, new Set(offsets.map((o) => partitionId(o.topic, o.partition))));
    let result: Awaited<typeof commit>;
    try {
      result = await commit;
    } finally {
      this.commitsInFlight.delete(commit);
    }
    for (const o of result.committed) this.committed.set(partitionId(o.topic, o.partition), o.offset);
    if (result.unknown.length > 0) this.topicsGone(result.unknown);
    if (result.committed.length > 0) this.emit('commit', { offsets: result.committed });
  }

  /**
   * Waits, at most the fencing timeout, while the fencing clock looks stale but the member is not fenced: the
   * heartbeat of a starved process is on its way. The commit's own check decides afterwards.
   */
  private async waitForContact(): Promise<void> {
    const deadline = performance.now() + this.allocator.fencingTimeout;
    while (this.clockStale(performance.now()) && !this.allocator.isFenced && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Commits refused because the topic no longer exists: nothing to keep for them. */
  private topicsGone(offsets: readonly PartitionOffset[]): void {
    for (const o of offsets) this.committed.set(partitionId(o.topic, o.partition), o.offset);
    this.reportError(
      new KielError(
        'ERR_UNKNOWN_TOPIC',
        `offsets of ${offsets.map((o) => `${o.topic}-${o.partition}`).join(', ')} were not committed: the topic no ` +
          `longer exists`,
        { location: offsets[0]!.topic },
      ),
    );
  }

  /** A background commit after a batch: at most one in flight; later batches join the next one. */
  private scheduleCommit(): void {
    if (this.committing) {
      this.commitAgain = true;
      return;
    }
    this.lastCommitStarted = performance.now();
    this.commitAgain = false;
    this.committing = this.commitOffsets()
      .catch((err: unknown) =>
        this.reportError(isKielError(err) ? err : new KielError('ERR_KAFKA', String(err), { cause: err })),
      )
      .finally(() => {
        this.committing = undefined;
        if (this.commitAgain && this.connected) this.scheduleCommit();
      });
  }
}
