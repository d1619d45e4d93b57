/**
 * The leader's publishing loop: when this member leads, compute the next allocation (`leader.ts`) whenever the
 * members, the partitions, the control record or a waited-for deadline change, and publish it by compare-and-set.
 * Bursts of changes coalesce into one run; a failed publication is tried again shortly.
 */
import type { Strategy } from '@kiel/allocators';
import type { AllocatorBackend, Member, VersionedRecord } from '../backend/types';
import { KielError, isKielError } from '../errors';
import { partitionId } from '../partition-id';
import { computeAllocation } from './leader';
import {
  compareStrings,
  formatAllocation,
  partitionsOf,
  readClaim,
  type AllocationRecord,
  type ControlRecord,
} from './records';

/** How long a failed publication waits before it is tried again, ms. */
const RETRY_MS = 500;

/**
 * After a throttled generation (maxMovesPerRebalance), the leader publishes the next step once every moved partition
 * is claimed by its new owner, or after this long, so that one slow handoff cannot stop the group converging, ms.
 */
const THROTTLE_STEP_MAX_MS = 10_000;

/** The first allocation of a starting group waits at most this many initialRebalanceDelays after the lead is taken. */
export const START_DELAY_CAP = 10;

/** What the publishing loop reads from the member it works for (`PartitionAllocator`). */
export interface LeaderContext {
  readonly backend: AllocatorBackend;
  readonly group: string;
  readonly strategy: Strategy;
  readonly strategyName: string;
  readonly rebalanceDelay: number | undefined;
  readonly initialRebalanceDelay: number | undefined;
  readonly maxMovesPerRebalance: number | undefined;
  /** Whether this member leads the group now. */
  isLeader(): boolean;
  stopping(): boolean;
  memberId(): string;
  /** The generation this member follows. */
  generation(): number;
  /** The live members, in creation order. */
  members(): readonly Member[];
  /** The latest creation order seen for a member id, -1 if none. */
  lastOrder(id: string): number;
  control(): ControlRecord;
  partitionSet(): readonly string[];
  /** The allocation record as the backend holds it, as last read or written. */
  allocation(): { record: AllocationRecord; version: string } | undefined;
  /** The allocation this member follows. */
  followed(): AllocationRecord | undefined;
  /** When this member took the lead, and when the member list last changed (performance.now()). */
  leaderSince(): number;
  membersChangedAt(): number;
  /** This member's write of `record` succeeded, as version `version`: follow it. */
  published(record: AllocationRecord, version: string): void;
  /** Another writer was first: here is the record as it is now. */
  lostRace(record: VersionedRecord | null): void;
  report(error: KielError): void;
}

const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

const sameWaiting = (a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>) => {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
};

/** The leader's publishing loop of one member. */
export class LeaderLoop {
  private rebalancing: Promise<void> | undefined;
  private rebalanceAgain = false;
  /** When the leader published the current throttled step (performance.now()). */
  private throttleStepAt = 0;
  /** Wakes the leader when a waited-for member's delay ends, or to look at a throttled step's progress again. */
  private leaderTimer: NodeJS.Timeout | undefined;
  private leaderTimerAt = 0;

  constructor(private readonly ctx: LeaderContext) {}

  /** Stops the wake-up timer (the member stops). */
  stopTimer(): void {
    clearTimeout(this.leaderTimer);
    this.leaderTimer = undefined;
  }

  /** Runs the leader's rebalance after the current one, coalescing bursts of changes. */
  schedule(): void {
    if (!this.ctx.isLeader() || this.ctx.stopping()) return;
    if (this.rebalancing) {
      this.rebalanceAgain = true;
      return;
    }
    let failed = false;
    // Cleared in the same continuation that ends the loop, for the reason given in reconcile().
    this.rebalancing = (async () => {
      try {
        do {
          this.rebalanceAgain = false;
          failed = false;
          await new Promise<void>((resolve) => setImmediate(resolve));
          try {
            await this.rebalance();
          } catch (err) {
            // An invalid or too large allocation waits for the next change (the same input gives the same); anything else
            // (the backend failed) is tried again shortly, since no change may come to trigger it.
            failed = !isKielError(err, 'ERR_INVALID_ALLOCATION') && !isKielError(err, 'ERR_RECORD_TOO_LARGE');
            this.ctx.report(
              isKielError(err)
                ? err
                : new KielError(
                    'ERR_BACKEND',
                    `publishing the allocation of group ${this.ctx.group} failed: ${(err as Error)?.message ?? err}; retrying`,
                    { retriable: true, cause: err },
                  ),
            );
          }
        } while (this.rebalanceAgain && this.ctx.isLeader() && !this.ctx.stopping());
      } finally {
        this.rebalancing = undefined;
        if (failed && this.ctx.isLeader() && !this.ctx.stopping()) setTimeout(() => this.schedule(), RETRY_MS).unref();
      }
    })();
  }

  private async rebalance(): Promise<void> {
    for (let attempt = 0; attempt < 50 && this.ctx.isLeader() && !this.ctx.stopping(); attempt++) {
      // Frozen: nothing new is published until the freeze is lifted (its watch wakes the leader then).
      if (this.ctx.control().frozen !== undefined) return;
      clearTimeout(this.leaderTimer);
      this.leaderTimer = undefined;
      const liveIds = [...new Set(this.ctx.members().map((m) => m.info.id))].sort(compareStrings);
      const partitions = [...this.ctx.partitionSet()].sort(compareStrings);
      const current = this.ctx.allocation()?.record;
      const { waiting, named } = this.waitingMembers(liveIds, current);
      const memberIds = [...new Set([...liveIds, ...Object.keys(waiting)])].sort(compareStrings);
      const waitingChanged = !sameWaiting(current?.waiting ?? {}, waiting);
      const startsAt = this.groupStartsAt(current, liveIds);
      if (startsAt > performance.now()) {
        this.wakeLeaderIn(startsAt - performance.now() + 1);
        return;
      }
      // A published record below the generation followed here went back (deleted, restored, written by hand): it is
      // overwritten with a generation above everything seen, even if it lists the same members and partitions.
      const wentBack = (current?.generation ?? 0) < this.ctx.generation();
      if (
        current &&
        !wentBack &&
        !waitingChanged &&
        sameList(current.members, memberIds) &&
        sameList(current.partitions, partitions) &&
        !this.breaksGivenUp(current, liveIds)
      ) {
        // A throttled step goes on once its handoffs are done.
        if (!current.throttled || !(await this.throttledStepDone(current))) {
          this.wakeLeader(current);
          return;
        }
        if (!this.ctx.isLeader() || this.ctx.stopping() || this.ctx.allocation()?.record !== current) continue;
      }
      const previous = this.ctx.followed() ?? current;
      const weights: Record<string, number> = {};
      for (const m of this.ctx.members()) if (m.info.weight !== undefined) weights[m.info.id] = m.info.weight;
      const { record, throttled } = computeAllocation({
        strategy: this.ctx.strategy,
        strategyName: this.ctx.strategyName,
        leader: this.ctx.memberId(),
        generation: Math.max(current?.generation ?? 0, this.ctx.generation()) + 1,
        memberIds,
        liveIds,
        partitions,
        previous,
        weights,
        waiting,
        named,
        maxMovesPerRebalance: this.ctx.maxMovesPerRebalance,
        givenUp: this.ctx.control().givenUp,
        now: Date.now(),
      });
      const written = await this.ctx.backend.writeRecord(
        this.ctx.group,
        'allocation',
        formatAllocation(record),
        this.ctx.allocation()?.version ?? null,
      );
      if (written !== null) {
        if (throttled > 0) this.throttleStepAt = performance.now();
        this.ctx.published(record, written);
        this.wakeLeader(record);
        return;
      }
      // Someone wrote first (an old leader, or our view is stale): read it and try again.
      const fresh = await this.ctx.backend.readRecord(this.ctx.group, 'allocation');
      this.ctx.lostRace(fresh);
    }
    if (this.ctx.isLeader() && !this.ctx.stopping()) {
      throw new KielError('ERR_BACKEND', `the allocation of group ${this.ctx.group} kept changing under 50 writes`, {
        retriable: true,
      });
    }
  }

  /**
   * When a starting group (no allocation, or none of its members live or waited for) gets its first allocation:
   * `initialRebalanceDelay` after the member list last changed, at most START_DELAY_CAP times it after this member
   * took the lead (performance.now() clock). 0 when the group is not starting or there is no delay.
   */
  private groupStartsAt(current: AllocationRecord | undefined, liveIds: readonly string[]): number {
    const delay = this.ctx.initialRebalanceDelay ?? 0;
    if (delay <= 0) return 0;
    if (current !== undefined) {
      const live = new Set(liveIds);
      const now = Date.now();
      if (current.members.some((id) => live.has(id) || (current.waiting?.[id] ?? 0) > now)) return 0;
    }
    return Math.min(this.ctx.membersChangedAt() + delay, this.ctx.leaderSince() + START_DELAY_CAP * delay);
  }

  /**
   * The named members of the published allocation that are not live but still waited for: those whose
   * `rebalanceDelay` has not run out and that did not leave for good (a leave notice of their latest entry). Also
   * returns every id known to be named (live entries marked so, and the record's list).
   */
  private waitingMembers(
    liveIds: readonly string[],
    current: AllocationRecord | undefined,
  ): { waiting: Record<string, number>; named: Set<string> } {
    const named = new Set<string>(current?.named ?? []);
    for (const m of this.ctx.members()) if (m.info.named === true) named.add(m.info.id);
    const waiting: Record<string, number> = {};
    const delay = this.ctx.rebalanceDelay ?? 0;
    if (delay <= 0 || current === undefined) return { waiting, named };
    const live = new Set(liveIds);
    const now = Date.now();
    for (const id of current.members) {
      if (live.has(id) || !named.has(id)) continue;
      const notice = this.ctx.control().leaving?.[id];
      // A notice counts unless it is of an older entry than one seen live since.
      if (notice !== undefined && notice >= (this.ctx.lastOrder(id) ?? -1)) continue;
      const until = current.waiting?.[id] ?? now + delay;
      if (until > now) waiting[id] = until;
    }
    return { waiting, named };
  }

  /**
   * Whether the handoffs of a throttled step are done: every partition claimed by the live member it is assigned to.
   * Not yet: looks again shortly (a step that takes longer than THROTTLE_STEP_MAX_MS counts as done).
   */
  private async throttledStepDone(record: AllocationRecord): Promise<boolean> {
    // A new leader did not see the step begin: it counts from now.
    if (this.throttleStepAt === 0) this.throttleStepAt = performance.now();
    if (performance.now() - this.throttleStepAt >= THROTTLE_STEP_MAX_MS) return true;
    const live = new Set(this.ctx.members().map((m) => m.info.id));
    const claims = await this.ctx.backend.claims(this.ctx.group);
    for (const [member, topics] of Object.entries(record.assignment)) {
      if (!live.has(member)) continue;
      for (const [topic, ids] of Object.entries(topics)) {
        for (const p of ids) {
          const claim = claims.get(partitionId(topic, p));
          if ((claim && readClaim(claim.value)?.member) !== member) {
            this.wakeLeaderIn(250);
            return false;
          }
        }
      }
    }
    return true;
  }

  /** Wakes the leader when the first waited-for member's delay ends, or to follow a throttled step. */
  private wakeLeader(record: AllocationRecord): void {
    if (record.throttled) this.wakeLeaderIn(250);
    const deadlines = Object.values(record.waiting ?? {});
    if (deadlines.length > 0) this.wakeLeaderIn(Math.max(0, Math.min(...deadlines) - Date.now()) + 5);
  }

  private wakeLeaderIn(ms: number): void {
    if (this.ctx.stopping()) return;
    const at = performance.now() + ms;
    if (this.leaderTimer !== undefined && this.leaderTimerAt <= at) return;
    clearTimeout(this.leaderTimer);
    this.leaderTimerAt = at;
    this.leaderTimer = setTimeout(() => {
      this.leaderTimer = undefined;
      this.schedule();
    }, ms);
    this.leaderTimer.unref();
  }

  /** Whether `record` gives a live member a partition that member gave up and is still keeping away from. */
  private breaksGivenUp(record: AllocationRecord, live: readonly string[]): boolean {
    const givenUp = this.ctx.control().givenUp;
    if (givenUp === undefined) return false;
    const now = Date.now();
    return Object.entries(givenUp).some(
      ([id, g]) =>
        g.until > now && live.some((m) => m !== g.member) && partitionsOf(record.assignment, g.member).has(id),
    );
  }
}
