import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Strategy, TopicPartition } from '@kiel/allocators';
import type { AllocatorBackend, Member, MemberInfo, Unsubscribe, VersionedRecord } from '../backend/types';
import { isBackendError } from '../backend/errors';
import { emitToEach } from '../backend/events';
import { KielError } from '../errors';
import {
  compareStrings,
  formatPartitionSet,
  parseAllocation,
  parseControl,
  parsePartitionSet,
  partitionsOf,
  type AllocationRecord,
  type ControlRecord,
  DEPARTED_KEEP_MS,
} from './records';
import { updateControl } from './control';
import { LeaderLoop, START_DELAY_CAP } from './leader-loop';
import { parsePartitionId } from '../partition-id';
import { Handoff, type HandoffHooks, type HandoffObserver } from './handoff';
import { FencingClock } from './fencing';

export { START_DELAY_CAP };
export type { TopicPartition, HandoffHooks };

/**
 * Timing hooks for metrics and tracing (`consumer.metrics()`, the `kiel:consumer:*` channels). Called synchronously;
 * they must be cheap and must not throw.
 */
export interface PartitionAllocatorObserver extends HandoffObserver {
  /** This member started applying generation `generation` (or, on close, handing everything back). */
  handoffStarted(generation: number): void;
}

/** Events of the coordination core. */
export interface PartitionAllocatorEvents {
  /**
   * This member applied a new allocation: what it gained and lost, and how long the handoff took. Once per
   * generation, also when this member's partitions stay the same (both lists empty), and once more for the hand-back
   * of a graceful close. A generation superseded before this member finished it is reported with the next one.
   */
  rebalance: [info: { generation: number; assigned: string[]; revoked: string[]; durationMs: number }];
  /** Contact with the backend was lost for longer than the fencing timeout: processing is paused. */
  fenced: [info: { reason: string }];
  /** Contact is back with the same session: processing resumes. */
  unfenced: [];
  /** The session is gone, and with it every claim: processing stopped for every partition. */
  lost: [info: { reason: string; memberId: string }];
  /** After a lost session, this process joined again as a new member. */
  rejoined: [info: { memberId: string }];
  /** This member became the group's leader. */
  leader: [info: { memberId: string; generation: number }];
  /**
   * A problem: an invalid allocation (the previous one is kept), a malformed record, a record that went back
   * (`ERR_STALE_ALLOCATION`), a listener that threw (`ERR_LISTENER`). `ERR_FENCED` that is not retriable is fatal: the
   * session was lost and this member will not rejoin (see the `ERR_FENCED` code).
   */
  error: [error: KielError];
}

/** Options of {@link PartitionAllocator}. */
export interface PartitionAllocatorOptions {
  readonly backend: AllocatorBackend;
  readonly group: string;
  readonly strategy: Strategy;
  readonly strategyName: string;
  /** This member's weight for weighted strategies. */
  readonly weight?: number;
  /** A fixed member id; by default `host:pid:uuid`, new on every join. */
  readonly memberId?: string;
  /**
   * A stable name that survives restarts: the member id, marked as named. A second live member with the same name is
   * refused (ERR_DUPLICATE_INSTANCE) once the first has had a session timeout to go away.
   */
  readonly instanceId?: string;
  /**
   * As leader: how long the partitions of a named member whose session ended wait for it before they move, ms.
   * Default 0 (they move at once).
   */
  readonly rebalanceDelay?: number;
  /**
   * As leader of a group that starts (no allocation yet, or none of its members live): publish the first allocation
   * once no member has joined for this long, ms (at most {@link START_DELAY_CAP} times it after taking the lead), so
   * that members starting together get one allocation instead of one per join. Default 0 (at once).
   */
  readonly initialRebalanceDelay?: number;
  /**
   * As leader: the most partitions moved from one live member to another per generation. Partitions without a live
   * owner (new ones, those of members gone for good) never count. Default unlimited.
   */
  readonly maxMovesPerRebalance?: number;
  /** ms without contact with the backend after which this member fences itself. */
  readonly fencingTimeout: number | undefined;
  /** After a lost session: join again as a new member (true) or report a fatal error (false). */
  readonly rejoin: boolean;
  readonly hooks: HandoffHooks;
  readonly observer?: PartitionAllocatorObserver;
}

/**
 * The coordinator started on each backend instance, until it stops: claims and member entries belong to the backend's
 * session, so a second coordinator on the same instance would see the first one's claims as its own.
 */
const coordinatorOf = new WeakMap<AllocatorBackend, PartitionAllocator>();

/**
 * Beyond one session timeout, how long a named member waits for an older live entry with its name to go away (its
 * own previous incarnation, killed before its session ended) before it is refused as a duplicate, ms.
 */
const DUPLICATE_GRACE_MS = 2_000;

/** How many times start() connects and joins again when the session expires under it before it gives up. */
const START_ATTEMPTS = 3;

/**
 * Where a PartitionAllocator is in its life (one state where there were four flags):
 * - `idle`: constructed, or a start() that failed;
 * - `starting`: start() connects and joins;
 * - `running`: joined, following the group;
 * - `rejoining`: its session was lost; until the new one has joined, what the watches deliver is ignored (the old
 *   id may still hold partitions in a record written before the loss was noticed: following it would claim them for
 *   an id that no longer exists), and the rejoin reads both records afresh once joined;
 * - `lost`: its session was lost and `rejoin` is off: it owns nothing until stopped and started again;
 * - `stopping`: stop() hands everything back and leaves; `stopped`: done (start() may begin again if the backend was
 *   kept open).
 */
type Lifecycle = 'idle' | 'starting' | 'running' | 'rejoining' | 'lost' | 'stopping' | 'stopped';

/** The moves {@link PartitionAllocator} makes; any other is a bug. */
const LIFECYCLE_MOVES: Readonly<Record<Lifecycle, readonly Lifecycle[]>> = {
  idle: ['starting', 'stopping'],
  starting: ['running', 'idle', 'stopping'],
  running: ['rejoining', 'lost', 'stopping'],
  // A newer session lost while rejoining starts the rejoin again.
  rejoining: ['running', 'rejoining', 'stopping'],
  lost: ['lost', 'stopping'],
  stopping: ['stopped'],
  stopped: ['starting'],
};

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

const memberIdsOf = (members: readonly Member[]) => members.map((m) => m.info.id);

/**
 * The coordination protocol of DESIGN.md, written once for every backend: membership, leader election (lowest
 * live member by creation order), the leader running and validating the strategy and publishing `generation + 1`
 * by compare-and-set, and each member's handoff: commit-before-release for revoked partitions, claim-before-fetch
 * for added ones, untouched partitions flowing throughout. It keeps its own fencing clock. (kiel called this part
 * the PartitionAllocator; "group coordinator" is the Kafka broker that keeps the group's offsets, which
 * `offsets.ts` talks to.) The leader's computation is in `leader.ts`; a partition's phases are drawn in STATES.md.
 */
export class PartitionAllocator extends EventEmitter<PartitionAllocatorEvents> {
  private readonly backend: AllocatorBackend;
  private readonly group: string;
  private readonly options: PartitionAllocatorOptions;
  private info!: MemberInfo;
  /** This member's entry, as the backend answered the join. */
  private entry: Member | undefined;
  private members: readonly Member[] = [];
  /** The group's control record (freeze, leave notices). */
  private control: ControlRecord = {};
  /** The latest creation order seen per live member id, to tell a leave notice of an older entry from a current one. */
  private readonly lastOrder = new Map<string, number>();
  private partitionSet: string[] = [];
  private allocation: { record: AllocationRecord; version: string } | undefined;
  private generation = -1;
  /** The allocation this member follows (generation {@link generation}). */
  private followed: AllocationRecord | undefined;
  /**
   * The generation of a published record found below the one this member follows (0 when the record was deleted):
   * the record went back. A record above it written by the current leader is its republication, and is followed.
   */
  private regressedTo: number | undefined;
  /** A fresh read of the allocation is under way, to tell a late delivery from a record that went back. */
  private confirming = false;
  private confirmAgain = false;
  /** The version of the last record reported as gone back, so that each is reported once. */
  private reportedRegression: string | undefined;
  /** Partitions this member gave up (a stalled handler handed off), until a wall-clock time: never claimed meanwhile. */
  private readonly givenUp = new Map<string, number>();
  private givenUpTimer: NodeJS.Timeout | undefined;
  /** The handoff (`handoff.ts`): each partition's phase, and the steps that bring what is held in line with the target. */
  private readonly handoff: Handoff;
  /** Counts lost sessions, so that the steps of an older one stop and never report into a newer one. */
  private sessionEpoch = 0;
  /**
   * Counts lost sessions only (sessionEpoch also counts stops): a revocation under way when the member stops is
   * finished as part of the hand-back, but one of a lost session must never release a claim of the next.
   */
  private sessionsLost = 0;
  /** Where this member is in its life; changed only by {@link moveTo}. */
  private lifecycle: Lifecycle = 'idle';
  private backendClosed = false;
  private unsubscribes: Unsubscribe[] = [];
  /** The leader's publishing loop (`leader-loop.ts`); it acts only while this member leads. */
  private readonly leaderLoop: LeaderLoop;
  private leader = false;
  /** When this member took the lead, and when the member list last changed (performance.now()). */
  private leaderSince = 0;
  private membersChangedAt = 0;
  /** The fencing clock (`fencing.ts`): fenced while the backend has been silent past the fencing timeout. */
  private readonly fencing: FencingClock;
  private handoffStarted = 0;
  /** The generation the last `rebalance` event reported. */
  private reportedGeneration = -1;
  private readonly onDisconnected = () => this.checkFence();
  private readonly onConnected = () => this.checkFence();
  private expiredWhileStarting = false;
  private readonly onExpired = () => {
    // While starting, an expiry is start()'s to handle (it joins on a new session), not the rejoin loop's.
    if (this.lifecycle === 'starting') this.expiredWhileStarting = true;
    else void this.sessionLost('the backend session expired');
  };
  private readonly onBackendError = (err: { code: string; message: string; location?: string }) =>
    this.report(
      new KielError(
        err.code === 'ERR_MALFORMED_RECORD' ? 'ERR_MALFORMED_RECORD' : 'ERR_BACKEND',
        `${this.backend.name}: ${err.message}`,
        {
          retriable: true,
          ...(err.location !== undefined ? { location: err.location } : {}),
          cause: err,
        },
      ),
    );

  constructor(options: PartitionAllocatorOptions) {
    super();
    this.options = options;
    this.backend = options.backend;
    this.group = options.group;
    this.handoff = new Handoff({
      backend: this.backend,
      group: this.group,
      hooks: options.hooks,
      observer: options.observer,
      memberId: () => this.info.id,
      generation: () => this.generation,
      stopping: () => this.stopping,
      fenced: () => this.fencing.fenced,
      sessionsLost: () => this.sessionsLost,
      sessionEpoch: () => this.sessionEpoch,
      report: (error) => this.report(error),
      applied: () => this.flushRebalance(true),
    });
    this.leaderLoop = new LeaderLoop({
      backend: this.backend,
      group: this.group,
      strategy: options.strategy,
      strategyName: options.strategyName,
      rebalanceDelay: options.rebalanceDelay,
      initialRebalanceDelay: options.initialRebalanceDelay,
      maxMovesPerRebalance: options.maxMovesPerRebalance,
      isLeader: () => this.leader,
      stopping: () => this.stopping,
      memberId: () => this.info.id,
      generation: () => this.generation,
      members: () => this.members,
      lastOrder: (id) => this.lastOrder.get(id) ?? -1,
      control: () => this.control,
      partitionSet: () => this.partitionSet,
      allocation: () => this.allocation,
      followed: () => this.followed,
      leaderSince: () => this.leaderSince,
      membersChangedAt: () => this.membersChangedAt,
      published: (record, version) => {
        this.allocation = { record, version };
        this.onAllocationRecord(record);
      },
      lostRace: (record) => this.applyAllocationRecord(record, { fresh: true }),
      report: (error) => this.report(error),
    });
    this.fencing = new FencingClock(this.backend, () => this.fencingTimeout, {
      fence: (silent) => {
        this.options.hooks.fence(true);
        this.notify('fenced', { reason: `no contact with ${this.backend.name} for ${Math.round(silent)} ms` });
      },
      unfence: () => {
        this.options.hooks.fence(false);
        this.notify('unfenced');
        // Revocations wait while fenced: do them now.
        void this.handoff.reconcile();
      },
      // Not joined yet (a `connected` event during the first start): nothing is owned or handed out, and the member
      // has no id to name; the fence timer, armed once joined, judges from then on.
      active: () => !this.stopping && this.info !== undefined,
    });
  }

  /**
   * This member's id (it changes when the member rejoins after a lost session): its `instanceId`, or the id made at
   * start(); an empty string before the first start of a member without a name.
   */
  get memberId(): string {
    return this.info?.id ?? this.options.instanceId ?? '';
  }

  /** Stopping or stopped: no step starts, and none of what is under way hands anything to a new generation. */
  private get stopping(): boolean {
    return this.lifecycle === 'stopping' || this.lifecycle === 'stopped';
  }

  /** Changes the lifecycle; a move it never makes is a bug in this class, and is thrown as one. */
  private moveTo(next: Lifecycle): void {
    if (!LIFECYCLE_MOVES[this.lifecycle].includes(next)) {
      throw new Error(`PartitionAllocator: no lifecycle move from ${this.lifecycle} to ${next}`);
    }
    this.lifecycle = next;
  }

  /** Whether start() has made this member's info (its id exists); false before the first start. */
  get hasIdentity(): boolean {
    return this.info !== undefined;
  }

  /** Whether this member leads the group now. */
  get isLeader(): boolean {
    return this.leader;
  }

  /** The generation of the allocation this member follows; -1 before the first. */
  get currentGeneration(): number {
    return this.generation;
  }

  /** Partitions this member holds claims on. */
  get ownedPartitions(): string[] {
    return this.handoff.phases.held().sort(compareStrings);
  }

  /** Whether this member holds the claim on `id` (`topic:partition`) right now. */
  isOwned(id: string): boolean {
    return this.handoff.phases.isHeld(id);
  }

  /** Whether processing is paused because ownership cannot be trusted. */
  get isFenced(): boolean {
    return this.fencing.fenced;
  }

  /** The fencing timeout in force, ms. */
  get fencingTimeout(): number {
    return this.options.fencingTimeout ?? Math.floor((this.backend.sessionTimeout * 2) / 3);
  }

  /**
   * Connects the backend, joins the group and starts following its allocation. Once started, a second call does
   * nothing; after `stop({ closeBackend: false })` it joins again as a new member.
   */
  async start(): Promise<void> {
    if (this.lifecycle === 'running' || this.lifecycle === 'rejoining' || this.lifecycle === 'lost') return;
    const holder = coordinatorOf.get(this.backend);
    if (holder !== undefined && holder !== this) {
      throw new KielError(
        'ERR_INVALID_CONFIG',
        `backend: this ${this.backend.name} backend instance is in use by another consumer (group ${holder.group}) ` +
          `that has not stopped. Member entries and claims belong to the backend's session, so two consumers on one ` +
          `instance would both own the same partitions: give each consumer its own backend instance`,
        { option: 'backend' },
      );
    }
    coordinatorOf.set(this.backend, this);
    this.moveTo('starting');
    this.resetState();
    this.backend.on('disconnected', this.onDisconnected);
    this.backend.on('connected', this.onConnected);
    this.backend.on('expired', this.onExpired);
    this.backend.on('error', this.onBackendError);
    try {
      await this.connectAndJoin();
    } catch (err) {
      this.detachListeners();
      if (coordinatorOf.get(this.backend) === this) coordinatorOf.delete(this.backend);
      if (this.lifecycle === 'starting') this.moveTo('idle');
      throw err;
    }
    // Stopped while joining: stop() has left and unsubscribed; nothing to follow.
    if (this.lifecycle !== 'starting') return;
    this.moveTo('running');
    this.unsubscribes.push(
      this.backend.watchMembers(this.group, (members) => this.onMembers(members)),
      this.backend.watchRecord(this.group, 'partitions', (record) => this.onPartitionSet(record)),
      this.backend.watchRecord(this.group, 'allocation', (record) => this.onAllocation(record)),
      this.backend.watchRecord(this.group, 'control', (record) => this.onControl(record)),
    );
    this.fencing.start();
  }

  /**
   * Connects and joins for start(). A session that expires meanwhile took its member entry with it: connect (a new
   * session) and join again, rather than leave that to the rejoin loop, which would join a second time.
   */
  private async connectAndJoin(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.expiredWhileStarting = false;
      await this.backend.connect();
      this.checkFencingMargin();
      try {
        await this.join();
      } catch (err) {
        const expired = this.expiredWhileStarting || isBackendError(err, 'ERR_SESSION_EXPIRED');
        if (!expired || attempt >= START_ATTEMPTS) throw err;
        continue;
      }
      if (!this.expiredWhileStarting) return;
      if (attempt >= START_ATTEMPTS) {
        throw new KielError(
          'ERR_BACKEND',
          `the ${this.backend.name} session expired ${attempt} times while joining group ${this.group}`,
          { retriable: true },
        );
      }
    }
  }

  /**
   * The fencing timeout must end before the session can expire, or a member cut off would keep processing after its
   * claims are gone. Checked against the session timeout the server granted, which may differ from the one asked
   * for (ZooKeeper clamps it to its minSessionTimeout and maxSessionTimeout).
   */
  private checkFencingMargin(): void {
    const fencingTimeout = this.options.fencingTimeout;
    const granted = this.backend.sessionTimeout;
    if (fencingTimeout === undefined || fencingTimeout < granted) return;
    throw new KielError(
      'ERR_INVALID_CONFIG',
      `fencingTimeout: the fencing timeout of ${fencingTimeout} ms (the fencingTimeout option, or 2/3 of the ` +
        `sessionTimeout option) is not below the session timeout of ${granted} ms that ${this.backend.name} granted; ` +
        `a member must fence itself before its session can expire. Lower it, or let the server grant a longer ` +
        `session (ZooKeeper: maxSessionTimeout)`,
      { option: 'fencingTimeout' },
    );
  }

  /** Adds partitions (`topic:partition`) to the group's shared set, by compare-and-set. */
  async addPartitions(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    for (let attempt = 0; ; attempt++) {
      // Lost races back off a little, with jitter, so that members seeding at once do not collide forever.
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(100, 5 * attempt)));
      const record = await this.backend.readRecord(this.group, 'partitions');
      const current = record ? parsePartitionSet(record.value, record.location) : [];
      const set = new Set(current);
      if (ids.every((id) => set.has(id))) return;
      for (const id of ids) set.add(id);
      const written = await this.backend.writeRecord(
        this.group,
        'partitions',
        formatPartitionSet(set),
        record?.version ?? null,
      );
      if (written !== null) return;
    }
  }

  /**
   * Removes partitions (`topic:partition`) from the group's shared set, by compare-and-set: the mirror of
   * {@link addPartitions}, for a topic that was deleted. The leader then publishes an allocation without them, and
   * their owners hand them back as for any revocation. Ids not in the set are ignored.
   */
  async removePartitions(ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(100, 5 * attempt)));
      const record = await this.backend.readRecord(this.group, 'partitions');
      if (record === null) return;
      const set = new Set(parsePartitionSet(record.value, record.location));
      if (ids.every((id) => !set.has(id))) return;
      for (const id of ids) set.delete(id);
      const written = await this.backend.writeRecord(this.group, 'partitions', formatPartitionSet(set), record.version);
      if (written !== null) return;
    }
  }

  /**
   * Leaves gracefully: hands every partition back (commit, then release), removes the member entry, and closes
   * the backend. Idempotent. A coordinator whose start() was refused because another one uses the same backend
   * instance leaves that backend alone.
   */
  async stop(options: { closeBackend?: boolean; restarting?: boolean } = {}): Promise<void> {
    const closeBackend = options.closeBackend ?? true;
    // Refused at start because another coordinator uses this backend instance: its session is not ours to end.
    const holder = coordinatorOf.get(this.backend);
    if (holder !== undefined && holder !== this) return;
    if (this.stopping) {
      // Left already, or leaving: what remains is to close the backend.
      if (closeBackend && !this.backendClosed) {
        this.backendClosed = true;
        await this.backend.close();
      }
      return;
    }
    // Only a member that follows the group on a live session leaves gracefully; one whose session was lost has no
    // entry to take away, and says nothing.
    const wasRunning = this.lifecycle === 'running';
    this.moveTo('stopping');
    this.sessionEpoch++;
    this.fencing.stop();
    this.leaderLoop.stopTimer();
    this.handoff.stopTimers();
    clearTimeout(this.givenUpTimer);
    for (const unsubscribe of this.unsubscribes) unsubscribe();
    this.unsubscribes = [];
    for (const slot of this.handoff.phases.inPhase('claiming')) slot.cancel?.();
    this.handoff.target = new Set();
    try {
      await this.handoff.running?.catch(() => undefined);
      // Revocations of the generation before: they finish (commit, release) and are reported with it.
      await this.handoff.revocationsDone();
      // The hand-back is a handoff of its own: report what came before, then time this one from here.
      this.flushRebalance();
      this.handoffStarted = performance.now();
      // A named member that leaves for good says so, so that the leader moves its partitions at once rather than
      // wait rebalanceDelay for it; one that restarts says nothing, and its partitions wait for it.
      // (No info yet when connect() failed before the join: a stop then has nobody to announce.)
      if (this.info?.named === true && !options.restarting && this.entry !== undefined) {
        await this.noticeLeaving(this.entry.order);
      } else if (wasRunning && this.info.named !== true && this.entry !== undefined) {
        // An observer cannot tell a leave from an expiry by what it sees go: say so before the entry goes.
        await this.noticeDeparted();
      }
      this.options.observer?.handoffStarted(this.generation);
      // Leave first, so that the leader reallocates while this member commits: the new owners wait for the
      // claims, which are released only after the commit (commit-before-release holds either way).
      await this.backend.leave(this.group).catch(() => undefined);
      await this.handoff.reconcile();
      await this.handoff.revocationsDone();
    } finally {
      this.moveTo('stopped');
      this.detachListeners();
      if (coordinatorOf.get(this.backend) === this) coordinatorOf.delete(this.backend);
      if (closeBackend) {
        this.backendClosed = true;
        await this.backend.close();
      }
    }
  }

  private detachListeners(): void {
    this.backend.off('disconnected', this.onDisconnected);
    this.backend.off('connected', this.onConnected);
    this.backend.off('expired', this.onExpired);
    this.backend.off('error', this.onBackendError);
  }

  /** The state of a member that has not joined yet, for start() after a stop() that kept the backend open. */
  private resetState(): void {
    this.members = [];
    this.partitionSet = [];
    this.allocation = undefined;
    this.generation = -1;
    this.followed = undefined;
    this.regressedTo = undefined;
    this.reportedRegression = undefined;
    this.reportedGeneration = -1;
    this.handoff.target = new Set();
    this.leader = false;
    this.fencing.reset();
    this.handoff.pendingAssigned = [];
    this.handoff.pendingRevoked = [];
    // Claims the stop could not hand back (a commit that failed) are still this session's: release them.
    const held = this.handoff.phases.all().filter((slot) => this.handoff.phases.isHeld(slot.id));
    if (held.length > 0) this.options.hooks.drop(held.map((slot) => parsePartitionId(slot.id)));
    for (const slot of held) this.handoff.phases.move(slot, 'stray');
    if (this.handoff.phases.inPhase('stray').length > 0) this.handoff.scheduleStrayRelease();
  }

  private async join(id = this.newMemberId()): Promise<void> {
    const named = this.options.instanceId !== undefined;
    this.info = {
      id,
      host: hostname(),
      pid: process.pid,
      ...(this.options.weight !== undefined ? { weight: this.options.weight } : {}),
      ...(named ? { named: true } : {}),
    };
    this.entry = await this.backend.join(this.group, this.info);
    if (named) await this.claimName(this.entry);
  }

  /**
   * A named member makes sure it is the only live member with its name. An older entry with the name may be this
   * member's previous incarnation, killed before its session ended: it is given one session timeout (and a little)
   * to go. One still there after that belongs to a live member: this one leaves and is refused. Of two members that
   * join with one name at once, the later entry is refused. Then the member clears a leave notice of its name.
   */
  private async claimName(entry: Member): Promise<void> {
    const deadline = performance.now() + this.backend.sessionTimeout + DUPLICATE_GRACE_MS;
    for (;;) {
      const members = await this.backend.members(this.group);
      const older = members.find((m) => m.info.id === entry.info.id && m.order < entry.order);
      if (older === undefined) break;
      if (performance.now() >= deadline) {
        await this.backend.leave(this.group).catch(() => undefined);
        throw new KielError(
          'ERR_DUPLICATE_INSTANCE',
          `instanceId: another live member of group ${this.group} is named ${JSON.stringify(entry.info.id)} ` +
            `(${older.info.host} pid ${older.info.pid}, ${older.location}), still there after one session timeout ` +
            `(${this.backend.sessionTimeout} ms): give each member its own instanceId`,
          { option: 'instanceId', location: older.location },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await updateControl(this.backend, this.group, (control) => {
      if (control.leaving?.[entry.info.id] === undefined) return undefined;
      const { [entry.info.id]: _mine, ...others } = control.leaving;
      return { ...control, leaving: others };
    }).catch((err: unknown) =>
      this.report(
        new KielError(
          'ERR_BACKEND',
          `clearing the leave notice of ${entry.info.id} failed: ${(err as Error)?.message}`,
          {
            retriable: true,
            cause: err,
          },
        ),
      ),
    );
  }

  /** Tells the leader that this named member leaves for good: its partitions move at once. */
  private async noticeLeaving(order: number): Promise<void> {
    const id = this.info.id;
    await updateControl(this.backend, this.group, (control) => ({
      ...control,
      leaving: { ...control.leaving, [id]: order },
    })).catch((err: unknown) =>
      this.report(
        new KielError(
          'ERR_BACKEND',
          `writing the leave notice of ${id} failed: ${(err as Error)?.message}; its partitions wait rebalanceDelay`,
          { retriable: true, cause: err },
        ),
      ),
    );
  }

  /** Records this member's graceful leave in the control record (`departed`), dropping notices past their time. */
  private async noticeDeparted(): Promise<void> {
    const id = this.info.id;
    const now = Date.now();
    await updateControl(this.backend, this.group, (control) => {
      const kept = Object.entries(control.departed ?? {}).filter(([, at]) => now - at < DEPARTED_KEEP_MS);
      return { ...control, departed: { ...Object.fromEntries(kept), [id]: now } };
    }).catch((err: unknown) => {
      // A session that ended under the stop (not noticed yet) took the entry with it: an expiry is what happened.
      if (isBackendError(err, 'ERR_SESSION_EXPIRED')) return;
      this.report(
        new KielError(
          'ERR_BACKEND',
          `writing the departure notice of ${id} failed: ${(err as Error)?.message}; observers may show its leave ` +
            `as an expiry`,
          { retriable: true, cause: err },
        ),
      );
    });
  }

  private newMemberId(): string {
    return this.options.instanceId ?? this.options.memberId ?? `${hostname()}:${process.pid}:${randomUUID()}`;
  }

  /** Reports a problem through `error`. A listener that throws is ignored: there is nowhere left to report it. */
  private report(error: KielError): void {
    emitToEach(this, 'error', [error], () => undefined);
  }

  /**
   * Emits an event to each listener on its own: a listener that throws (the application's, through the consumer's
   * forwarding) is reported as ERR_LISTENER and never stops the coordinator in the middle of a step.
   */
  private notify<E extends Exclude<keyof PartitionAllocatorEvents, 'error'>>(
    event: E,
    ...args: PartitionAllocatorEvents[E]
  ): void {
    emitToEach(this, event, args, (err) =>
      this.report(
        new KielError('ERR_LISTENER', `a listener of the ${event} event threw: ${(err as Error)?.message ?? err}`, {
          cause: err,
        }),
      ),
    );
  }

  // ---- leader --------------------------------------------------------------------------------------------

  private onMembers(members: readonly Member[]): void {
    // Only while running: while rejoining, the list is read afresh after the join (see Lifecycle).
    if (this.lifecycle !== 'running') return;
    if (!sameList(memberIdsOf(this.members), memberIdsOf(members))) this.membersChangedAt = performance.now();
    this.members = members;
    for (const m of members) {
      if ((this.lastOrder.get(m.info.id) ?? -1) < m.order) this.lastOrder.set(m.info.id, m.order);
    }
    const wasLeader = this.leader;
    // With a name, the entry must be this member's own: an older duplicate's entry is not.
    this.leader =
      members.length > 0 &&
      members[0]!.info.id === this.info.id &&
      (this.info.named !== true || this.entry === undefined || members[0]!.order === this.entry.order);
    if (this.leader && !wasLeader) {
      this.leaderSince = performance.now();
      this.notify('leader', { memberId: this.info.id, generation: this.generation });
    }
    this.leaderLoop.schedule();
  }

  private onControl(record: VersionedRecord | null): void {
    if (this.stopping) return;
    try {
      this.control = record ? parseControl(record.value, record.location) : {};
    } catch (err) {
      this.report(err as KielError);
      return;
    }
    this.leaderLoop.schedule();
  }

  /** Whether the group is frozen (its leader publishes nothing new), as last read. */
  get isFrozen(): boolean {
    return this.control.frozen !== undefined;
  }

  private onPartitionSet(record: VersionedRecord | null): void {
    if (this.stopping) return;
    try {
      this.partitionSet = record ? parsePartitionSet(record.value, record.location) : [];
    } catch (err) {
      this.report(err as KielError);
      return;
    }
    this.leaderLoop.schedule();
  }

  // ---- every member --------------------------------------------------------------------------------------

  private onAllocation(record: VersionedRecord | null): void {
    if (this.lifecycle !== 'running') return;
    this.applyAllocationRecord(record);
    // The leader also checks that the published allocation matches the live members and partitions.
    this.leaderLoop.schedule();
  }

  /**
   * Follows a record of the allocation. One below the generation followed here is either a late delivery (a watch
   * read that was under way when this member followed a newer record directly: normal, ignored) or a record that
   * went back (deleted, restored, written by hand). Only a fresh read tells them apart: `fresh` says this is one.
   */
  private applyAllocationRecord(record: VersionedRecord | null, options: { fresh?: boolean } = {}): void {
    if (!record) {
      if (this.generation <= 0) {
        this.allocation = undefined;
      } else if (options.fresh) {
        this.allocation = undefined;
        this.wentBack(0, 'deleted', `deleted:${this.generation}`);
      } else {
        this.confirmLower();
      }
      return;
    }
    let parsed: AllocationRecord;
    try {
      parsed = parseAllocation(record.value, record.location);
    } catch (err) {
      this.report(err as KielError);
      return;
    }
    if (parsed.generation >= this.generation) {
      this.allocation = { record: parsed, version: record.version };
      this.onAllocationRecord(parsed);
      return;
    }
    if (!options.fresh) {
      this.confirmLower();
      return;
    }
    // What the backend holds now: the leader's compare-and-set goes against it.
    this.allocation = { record: parsed, version: record.version };
    // Below the generation followed here. Never go back to an old assignment; but once the record has gone back, the
    // leader's republication may still be below what this member saw (a leader that saw less): follow that one.
    // The leader itself never goes down: it overwrites the record instead.
    const leaderId = this.members[0]?.info.id;
    if (
      !this.leader &&
      this.regressedTo !== undefined &&
      parsed.generation > this.regressedTo &&
      parsed.leader === leaderId
    ) {
      this.onAllocationRecord(parsed, { republished: true });
      return;
    }
    this.wentBack(parsed.generation, `generation ${parsed.generation}`, record.version);
  }

  /** Reads the allocation again after a delivery below the generation followed here, and acts on what is there now. */
  private confirmLower(): void {
    if (this.confirming) {
      this.confirmAgain = true;
      return;
    }
    this.confirming = true;
    const epoch = this.sessionEpoch;
    // Cleared in the same continuation that ends the loop, for the reason given in reconcile().
    void (async () => {
      try {
        do {
          this.confirmAgain = false;
          try {
            const record = await this.backend.readRecord(this.group, 'allocation');
            if (epoch !== this.sessionEpoch || this.stopping) return;
            this.applyAllocationRecord(record, { fresh: true });
            this.leaderLoop.schedule();
          } catch {
            // Unreachable: the watch delivers the record again once the backend is back, and this runs again.
            return;
          }
        } while (this.confirmAgain);
      } finally {
        this.confirming = false;
      }
    })();
  }

  /** The published allocation went below the generation this member follows: report it once, and wait for the fix. */
  private wentBack(generation: number, what: string, version: string): void {
    this.regressedTo = generation;
    if (this.reportedRegression === version) return;
    this.reportedRegression = version;
    this.report(
      new KielError(
        'ERR_STALE_ALLOCATION',
        `the allocation record of group ${this.group} went back to ${what} after generation ${this.generation} ` +
          `(deleted, restored from a backup or written by hand); ${
            this.leader
              ? `this member leads and publishes generation ${Math.max(generation, this.generation) + 1} over it`
              : `this member keeps generation ${this.generation} until the leader publishes over it`
          }`,
        { retriable: true },
      ),
    );
  }

  private onAllocationRecord(record: AllocationRecord, options: { republished?: boolean } = {}): void {
    // Leaving: the hand-back's target is nothing. A record that arrives now (the leader's own write, which was in
    // flight when stop() began) must not give partitions back, or the hand-back would skip them and close the session
    // under their handlers, uncommitted.
    if (this.stopping) return;
    if (record.generation <= this.generation && !options.republished) return;
    this.regressedTo = undefined;
    // Report what the previous generation's handoff completed before following the new one.
    this.flushRebalance();
    this.generation = record.generation;
    this.followed = record;
    // Reported generations restart below with a republication.
    if (options.republished) this.reportedGeneration = -1;
    this.handoff.target = this.targetOf(record);
    this.handoffStarted = performance.now();
    this.options.observer?.handoffStarted(this.generation);
    void this.handoff.reconcile();
  }

  /** What `record` gives this member, minus the partitions it gave up for now. */
  private targetOf(record: AllocationRecord): Set<string> {
    const target = partitionsOf(record.assignment, this.info.id);
    const now = Date.now();
    for (const [id, until] of this.givenUp) {
      if (until <= now) this.givenUp.delete(id);
      else target.delete(id);
    }
    return target;
  }

  /**
   * Gives up one partition (its handler stalled): it is handed off as a revoked partition is (stop fetching, wait for
   * the handler within the consumer's bound, commit what was handled, release the claim), this member does not claim
   * it again for `periodMs`, and a notice in the group's control record asks the leader to give it to another live
   * member meanwhile. Its other partitions are not touched.
   */
  giveUp(id: string, periodMs: number): void {
    if (this.stopping || !this.handoff.phases.isHeld(id)) return;
    const until = Date.now() + periodMs;
    this.givenUp.set(id, until);
    this.handoff.target.delete(id);
    void this.handoff.reconcile();
    const member = this.info.id;
    void updateControl(this.backend, this.group, (control) => {
      const now = Date.now();
      const kept = Object.fromEntries(Object.entries(control.givenUp ?? {}).filter(([, g]) => g.until > now));
      return { ...control, givenUp: { ...kept, [id]: { member, until } } };
    }).catch((err: unknown) =>
      this.report(
        new KielError(
          'ERR_BACKEND',
          `writing the notice that ${member} gave up ${id} failed: ${(err as Error)?.message ?? err}; the leader may ` +
            `leave it with this member, which keeps away from it for ${periodMs} ms`,
          { retriable: true, cause: err },
        ),
      ),
    );
    this.scheduleGivenUpExpiry();
  }

  /** When a partition given up may be taken again, follow the allocation again (it may still give it here). */
  private scheduleGivenUpExpiry(): void {
    clearTimeout(this.givenUpTimer);
    if (this.givenUp.size === 0 || this.stopping) return;
    const next = Math.min(...this.givenUp.values());
    this.givenUpTimer = setTimeout(
      () => {
        this.givenUpTimer = undefined;
        if (this.stopping) return;
        if (this.followed) this.handoff.target = this.targetOf(this.followed);
        void this.handoff.reconcile();
        this.scheduleGivenUpExpiry();
      },
      Math.max(0, next - Date.now()) + 5,
    );
    this.givenUpTimer.unref();
  }

  /**
   * Emits `rebalance` for what changed since the last one; with `applied`, also for a generation not reported yet in
   * which nothing changed for this member.
   */
  private flushRebalance(applied = false): void {
    const unreported = applied && this.generation > this.reportedGeneration;
    if (this.handoff.pendingAssigned.length === 0 && this.handoff.pendingRevoked.length === 0 && !unreported) return;
    const assigned = this.handoff.pendingAssigned.sort(compareStrings);
    const revoked = this.handoff.pendingRevoked.sort(compareStrings);
    this.handoff.pendingAssigned = [];
    this.handoff.pendingRevoked = [];
    this.reportedGeneration = this.generation;
    this.notify('rebalance', {
      generation: this.generation,
      assigned,
      revoked,
      durationMs: performance.now() - this.handoffStarted,
    });
  }

  // ---- fencing and lost sessions -------------------------------------------------------------------------

  /**
   * Reads the fencing clock now: fences this member when the backend has been silent past the fencing timeout, and
   * lifts the fence once contact is back. Runs on a timer, and whenever the consumer finds the clock stale first.
   */
  checkFence(): void {
    this.fencing.check();
  }

  private async sessionLost(reason: string): Promise<void> {
    if (this.stopping) return;
    const epoch = ++this.sessionEpoch;
    this.sessionsLost++;
    const lostId = this.info.id;
    const all = this.handoff.phases.all().filter((slot) => slot.phase !== 'stray');
    for (const slot of all) slot.cancel?.();
    this.options.hooks.drop(all.map((slot) => parsePartitionId(slot.id)));
    // Every phase ends with the session (steps of the old slots change nothing from here), and what its handoff did
    // is moot: its partitions were just dropped.
    this.handoff.sessionLost();
    this.generation = -1;
    this.followed = undefined;
    this.regressedTo = undefined;
    this.reportedRegression = undefined;
    this.reportedGeneration = -1;
    this.leader = false;
    this.moveTo(this.options.rejoin ? 'rejoining' : 'lost');
    this.notify('lost', { reason, memberId: lostId });
    if (!this.options.rejoin) {
      this.report(
        new KielError(
          'ERR_FENCED',
          `${reason}: member ${lostId} lost its partitions and will not rejoin (rejoin is off)`,
        ),
      );
      return;
    }
    // One new id for this lost session: a retry after a step that failed joins with it again (idempotent for the
    // same session), never as a second member. A newer lost session ends this loop.
    const id = this.newMemberId();
    const current = () => epoch === this.sessionEpoch && !this.stopping;
    let rejoined = false;
    for (let attempt = 0; current(); attempt++) {
      try {
        await this.backend.connect();
        if (!current()) return;
        await this.join(id);
        if (!current()) return;
        // Joined under the new id: what the watches deliver from now on is read with it. (A later step that failed
        // joins again on the same session, already running.)
        if (this.lifecycle === 'rejoining') this.moveTo('running');
        if (!rejoined) {
          rejoined = true;
          if (this.fencing.reset()) this.options.hooks.fence(false);
          this.notify('rejoined', { memberId: this.info.id });
        }
        // Subscriptions survive the new session; make sure the current state is applied.
        const allocation = await this.backend.readRecord(this.group, 'allocation');
        const members = await this.backend.members(this.group);
        if (!current()) return;
        // Not a fresh read any more: the watch may have delivered a newer record while the members were read.
        this.applyAllocationRecord(allocation);
        this.onMembers(members);
        return;
      } catch (err) {
        // A closed backend or refused credentials: retrying cannot help, and the loop would run forever.
        if (isBackendError(err) && !err.retriable) {
          this.report(
            new KielError(
              'ERR_FENCED',
              `${reason}: member ${lostId} cannot rejoin group ${this.group}: ${(err as Error).message} (${err.code}, ` +
                `not retriable); it owns no partitions until it is stopped and started again`,
              { cause: err },
            ),
          );
          return;
        }
        this.report(
          new KielError('ERR_BACKEND', `rejoining group ${this.group} failed: ${(err as Error)?.message ?? err}`, {
            retriable: true,
            cause: err,
          }),
        );
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 200 * 2 ** attempt)));
      }
    }
  }
}
