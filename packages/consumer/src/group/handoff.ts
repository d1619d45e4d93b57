/**
 * A member's handoff. Where each partition is: one map from partition to its phase ({@link PartitionPhases}), changed
 * only by {@link PartitionPhases.move}, which throws on a move the handoff never makes. What moves it: the steps of
 * {@link Handoff} (claim before fetch, commit before release), one per partition at a time. STATES.md draws the
 * phases and moves.
 */
import type { AllocatorBackend, Unsubscribe } from '../backend/types';
import type { TopicPartition } from '@kiel/allocators';
import { KielError, isKielError } from '../errors';
import { parsePartitionId } from '../partition-id';

/** A partition's phase in this member. A partition in no phase is idle: not wanted here, no claim of ours. */
export type Phase =
  /** In the target; the claim is being created, or waits for the previous owner (or for our own last release). */
  | 'claiming'
  /** The claim is ours; the `assign` hook runs (offsets looked up, fetching starts). */
  | 'assigning'
  /** The claim is ours; fetched and handled. */
  | 'owned'
  /** The claim is ours, out of the target: fetching stops, handlers finish, positions are committed, then released. */
  | 'revoking'
  /** The claim is ours, fetching stopped, and no step runs: a revocation failed, or the target gained it back. */
  | 'halted'
  /** Not wanted any more: a claim of ours that nothing fetched is being deleted. */
  | 'releasing'
  /** A claim we may still hold and do not want (a release or a claim that failed): released again later. */
  | 'stray';

/** The moves of {@link Phase}; `idle` is the absence of a phase. Any other move is a bug, thrown as one. */
const MOVES: Readonly<Record<Phase | 'idle', readonly (Phase | 'idle')[]>> = {
  idle: ['claiming'],
  // Given up before holding anything; claimed; claimed but no longer wanted; the claim call failed (it may have
  // created the claim all the same: a lost reply).
  claiming: ['idle', 'assigning', 'releasing', 'stray'],
  // Fetching; the target lost it meanwhile; the hook failed (nothing was fetched: give the claim back).
  assigning: ['owned', 'revoking', 'releasing', 'stray'],
  owned: ['revoking', 'stray'],
  // Released; the release failed; the hook failed, or the target gained it back after fetching stopped; the target
  // gained it back before (or fenced: nothing can be committed); the assign hook it waited for failed.
  revoking: ['idle', 'stray', 'halted', 'owned', 'releasing'],
  // Resumed (the target gained it back); revoked again.
  halted: ['assigning', 'revoking', 'stray'],
  releasing: ['idle', 'stray', 'claiming'],
  stray: ['claiming', 'releasing', 'idle'],
};

/** Phases in which the claim is this member's for fetching: what `isOwned` answers. */
const HELD: ReadonlySet<Phase> = new Set<Phase>(['assigning', 'owned', 'revoking', 'halted']);

/**
 * One partition's place in the handoff, and the steps under way for it. A step keeps the slot it began with, and
 * acts only while that slot is still the partition's ({@link PartitionPhases.holds}): a lost session clears every
 * slot, and a claim that starts from `releasing` or `stray` takes a new one, so no older step changes a newer one.
 */
export interface Slot {
  readonly id: string;
  phase: Phase;
  /** While `claiming`: stops the wait for the previous owner. */
  cancel?: () => void;
  /** The `assign` hook under way (`assigning`, or a revocation that began during it); never rejects. */
  assigned?: Promise<void>;
  /** The revocation under way (`revoking`). */
  revocation?: Promise<void>;
  /** A release of the claim under way; true once the claim is gone, false if it may still be there. */
  release?: Promise<boolean>;
  /** The claim's whole step (claim, then the `assign` hook), while it runs. */
  task?: Promise<void>;
  /**
   * Set by {@link PartitionPhases.claim}: steps of a cleared slot of this partition still under way (an `assign` hook
   * of a lost session). The claim waits for them, so that one of them cannot start fetching under the new claim.
   */
  after?: Promise<void>;
}

/** The phases of every partition of this member that is not idle. */
export class PartitionPhases {
  private readonly slots = new Map<string, Slot>();
  /**
   * How many slots are in each phase, kept by claim(), move() and clear(): the member asks whether any step is busy
   * and how many partitions it holds at the end of every step, which would otherwise scan every slot each time.
   */
  private readonly counts: Record<Phase, number> = {
    claiming: 0,
    assigning: 0,
    owned: 0,
    revoking: 0,
    halted: 0,
    releasing: 0,
    stray: 0,
  };
  /** Per partition, the steps of cleared slots still under way: one step per partition at a time, across sessions. */
  private readonly leftovers = new Map<string, Promise<void>>();

  /** The partition's slot, if it is not idle. */
  get(id: string): Slot | undefined {
    return this.slots.get(id);
  }

  /** The partition's phase; `idle` when it has none. */
  phaseOf(id: string): Phase | 'idle' {
    return this.slots.get(id)?.phase ?? 'idle';
  }

  /** Whether `slot` is still the partition's: a step of an older one (a lost session) must change nothing. */
  holds(slot: Slot): boolean {
    return this.slots.get(slot.id) === slot;
  }

  /** Whether this member holds the partition's claim for fetching (assigning, owned, revoking or halted). */
  isHeld(id: string): boolean {
    const phase = this.slots.get(id)?.phase;
    return phase !== undefined && HELD.has(phase);
  }

  /**
   * Whether a step of a claim, an assignment or a revocation is under way for any partition: a generation is not
   * reported applied meanwhile.
   */
  get busy(): boolean {
    return this.counts.claiming + this.counts.assigning + this.counts.revoking > 0;
  }

  /** How many partitions this member holds the claim of for fetching (the size of {@link held}). */
  get heldCount(): number {
    return this.counts.assigning + this.counts.owned + this.counts.revoking + this.counts.halted;
  }

  /** The partitions whose claim this member holds for fetching. */
  held(): string[] {
    const ids: string[] = [];
    for (const slot of this.slots.values()) if (HELD.has(slot.phase)) ids.push(slot.id);
    return ids;
  }

  /** The slots in one of `phases`, as a snapshot (a move while iterating is safe). */
  inPhase(...phases: Phase[]): Slot[] {
    return [...this.slots.values()].filter((slot) => phases.includes(slot.phase));
  }

  /** Every slot, as a snapshot. */
  all(): Slot[] {
    return [...this.slots.values()];
  }

  /**
   * Starts a claim: a new slot in `claiming`, from idle, `releasing` or `stray`. A release still under way stays with
   * the old slot; the claim waits for it, and for the steps of a cleared slot still under way (`after`).
   */
  claim(id: string): Slot {
    const before = this.slots.get(id);
    check(id, before?.phase ?? 'idle', 'claiming');
    const after = this.leftovers.get(id);
    const slot: Slot = { id, phase: 'claiming', ...(after !== undefined ? { after } : {}) };
    if (before !== undefined) this.counts[before.phase]--;
    this.counts.claiming++;
    this.slots.set(id, slot);
    return slot;
  }

  /** Moves `slot` (which must be the partition's) to `to`; `idle` forgets the partition. */
  move(slot: Slot, to: Phase | 'idle'): void {
    if (!this.holds(slot)) throw new Error(`partition handoff: ${slot.id} moved by a step of an older slot`);
    check(slot.id, slot.phase, to);
    this.counts[slot.phase]--;
    if (to === 'idle') {
      this.slots.delete(slot.id);
    } else {
      this.counts[to]++;
      slot.phase = to;
    }
  }

  /** Forgets every partition: the session, and every claim of it, is gone. Steps of the old slots change nothing. */
  clear(): void {
    for (const slot of this.slots.values()) {
      const pending = [slot.task, slot.assigned, slot.after].filter((p): p is Promise<void> => p !== undefined);
      if (pending.length === 0) continue;
      const settled: Promise<void> = Promise.all(pending).then(
        () => {
          if (this.leftovers.get(slot.id) === settled) this.leftovers.delete(slot.id);
        },
        () => {
          if (this.leftovers.get(slot.id) === settled) this.leftovers.delete(slot.id);
        },
      );
      this.leftovers.set(slot.id, settled);
    }
    this.slots.clear();
    for (const phase of Object.keys(this.counts) as Phase[]) this.counts[phase] = 0;
  }
}

function check(id: string, from: Phase | 'idle', to: Phase | 'idle'): void {
  if (!MOVES[from].includes(to)) throw new Error(`partition handoff: no move of ${id} from ${from} to ${to}`);
}

/** What the consumer does at each step of a handoff. The handoff decides when; the consumer does the I/O. */
export interface HandoffHooks {
  /**
   * Stop fetching these partitions, let their running handlers finish, commit their positions. The handoff calls it
   * for one partition at a time, for several partitions concurrently, and releases each claim once its own call
   * resolves; a call that rejects keeps that claim and is made again later.
   */
  revoke(partitions: TopicPartition[]): Promise<void>;
  /** The claims are held: look up the committed offsets and start fetching. */
  assign(partitions: TopicPartition[]): Promise<void>;
  /** Ownership is gone without a chance to commit (the session was lost): stop at once, commit nothing. */
  drop(partitions: TopicPartition[]): void;
  /** Stop (true) or resume (false) fetching and handing out messages: ownership cannot be trusted meanwhile. */
  fence(fenced: boolean): void;
}

/** The timing hooks the handoff reports to (part of `PartitionAllocatorObserver`). */
export interface HandoffObserver {
  /**
   * One partition's handoff step began: a revocation (commit, release) or an assignment (claim, offsets, fetch).
   * The function returned is called once when it ends; `claimWaitMs` is how long the claim waited for the previous
   * owner to let go.
   */
  partitionHandoff(
    id: string,
    direction: 'revoke' | 'assign',
    generation: number,
  ): (outcome: 'done' | 'cancelled' | 'failed', claimWaitMs: number, error?: unknown) => void;
  /** A claim or release round trip to the backend succeeded after `ms`. */
  backendCall(ms: number): void;
}

/** What the handoff reads from the member it works for (`PartitionAllocator`). */
export interface HandoffContext {
  readonly backend: AllocatorBackend;
  readonly group: string;
  readonly hooks: HandoffHooks;
  readonly observer: HandoffObserver | undefined;
  /** The member id claims are written with. */
  memberId(): string;
  /** The generation being applied. */
  generation(): number;
  /** Stopping or stopped: no step starts, and what is under way hands nothing to a new generation. */
  stopping(): boolean;
  /** Fenced: nothing is committed and no claim released until contact is back. */
  fenced(): boolean;
  /** Counts lost sessions: a step of an older session never releases a claim of a newer one. */
  sessionsLost(): number;
  /** Counts lost sessions and stops: a claim that began before either reports nothing. */
  sessionEpoch(): number;
  report(error: KielError): void;
  /** This member holds exactly its target and no step runs: the generation is applied. */
  applied(): void;
}

/** How long a failed step (a claim, a release) waits before it is tried again, ms. */
const RETRY_MS = 500;

/**
 * One member's handoff: brings the partitions it holds in line with its target, one step per partition at a time:
 * claim before fetch for what it gains, commit before release for what it loses, untouched partitions flowing
 * throughout. The member (`PartitionAllocator`) sets the target from the allocation it follows and calls
 * {@link reconcile}; the phases are in {@link phases}.
 */
export class Handoff {
  readonly phases = new PartitionPhases();
  /** What the allocation followed gives this member (minus the partitions it gave up for now). */
  target = new Set<string>();
  /** What the handoff assigned and revoked since the last `rebalance` report. */
  pendingAssigned: string[] = [];
  pendingRevoked: string[] = [];
  private reconciling: Promise<void> | undefined;
  private reconcileAgain = false;
  /** A reconciliation step failed (the backend or Kafka was unreachable): the next try is due. */
  private retryTimer: NodeJS.Timeout | undefined;
  private strayTimer: NodeJS.Timeout | undefined;

  constructor(private readonly ctx: HandoffContext) {}

  /** The reconciliation under way, if any. */
  get running(): Promise<void> | undefined {
    return this.reconciling;
  }

  /** Stops the retry and stray timers (the member stops). */
  stopTimers(): void {
    clearTimeout(this.strayTimer);
    this.strayTimer = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** The session is gone, and every claim with it: every phase ends, and what the handoff did is moot. */
  sessionLost(): void {
    this.phases.clear();
    clearTimeout(this.strayTimer);
    this.strayTimer = undefined;
    this.pendingAssigned = [];
    this.pendingRevoked = [];
    this.target = new Set();
  }

  /** Brings what this member owns in line with its target, one step at a time, until they agree. */
  reconcile(): Promise<void> {
    if (this.reconciling) {
      this.reconcileAgain = true;
      return this.reconciling;
    }
    // `reconciling` is cleared in the same continuation that sees no further request: cleared one promise hop later,
    // a reconcile() called in between would set reconcileAgain on a run that had already ended, and that request (and
    // every rebalance event, which waits for it) would be lost until the next generation.
    this.reconciling = (async () => {
      try {
        do {
          this.reconcileAgain = false;
          await this.reconcileOnce();
        } while (this.reconcileAgain);
      } catch (err: unknown) {
        this.ctx.report(
          isKielError(err) ? err : new KielError('ERR_BACKEND', String(err), { retriable: true, cause: err }),
        );
        // A failed step (the backend was unreachable) is tried again shortly.
        this.reconcileAgain = false;
        this.reconcileSoon();
      } finally {
        this.reconciling = undefined;
      }
    })();
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    const target = this.target;
    // Cancel claim waits for partitions no longer ours.
    for (const slot of this.phases.inPhase('claiming')) if (!target.has(slot.id)) slot.cancel?.();
    // Commit-before-release for what we lose, each partition on its own: one whose commit fails or hangs keeps its
    // claim without holding up the others' release.
    for (const slot of this.phases.inPhase('assigning', 'owned', 'halted')) {
      if (!target.has(slot.id)) void this.revoke(slot);
    }
    for (const id of target) {
      const slot = this.phases.get(id);
      // Given back while their revocation failed (fetching stopped, commit refused): start them again.
      if (slot?.phase === 'halted') this.resume(slot);
      // Claim-before-fetch for what we gain.
      else if (slot === undefined || slot.phase === 'releasing' || slot.phase === 'stray') this.claim(id);
    }
    this.maybeReportRebalance();
  }

  /**
   * Hands one revoked partition back: stop fetching, let its handlers finish and commit (the revoke hook), then
   * release its claim. While fenced, a handler may still be running and nothing can be committed safely: the claim
   * stays until contact returns (then reconciliation runs again) or the session ends with it. Only a graceful close
   * drops it at once, since closing ends the session anyway. A failure leaves the claim held and is retried.
   */
  private revoke(slot: Slot): Promise<void> {
    const id = slot.id;
    const session = this.ctx.sessionsLost();
    const wasHalted = slot.phase === 'halted';
    this.phases.move(slot, 'revoking');
    const current = () =>
      session === this.ctx.sessionsLost() &&
      this.phases.holds(slot) &&
      slot.phase === 'revoking' &&
      !this.target.has(id);
    const ended = this.ctx.observer?.partitionHandoff(id, 'revoke', this.ctx.generation());
    let outcome: 'done' | 'cancelled' | 'failed' = 'cancelled';
    let failure: unknown;
    // Whether fetching stopped (the revoke hook was called): a revocation that ends short leaves it halted.
    let stopped = wasHalted;
    const done = (async () => {
      await slot.assigned;
      if (!current() || (this.ctx.fenced() && !this.ctx.stopping())) return;
      if (!this.ctx.fenced()) {
        stopped = true;
        await this.ctx.hooks.revoke([parsePartitionId(id)]);
        // Given back while it was being committed: keep the claim; the reconciliation below starts it again.
        if (!current()) return;
      } else {
        this.ctx.hooks.drop([parsePartitionId(id)]);
      }
      const released = await this.releaseClaim(slot);
      if (session !== this.ctx.sessionsLost() || !this.phases.holds(slot)) return;
      this.phases.move(slot, released ? 'idle' : 'stray');
      if (!released) this.scheduleStrayRelease();
      this.pendingRevoked.push(id);
      outcome = 'done';
    })()
      .catch((err: unknown) => {
        outcome = 'failed';
        failure = err;
        this.ctx.report(
          isKielError(err)
            ? err
            : new KielError('ERR_BACKEND', `revoking ${id} failed: ${(err as Error)?.message ?? err}; retrying`, {
                retriable: true,
                cause: err,
              }),
        );
        // The claim stays held (commit-before-release); the next reconciliation tries again.
        this.reconcileSoon();
      })
      .finally(() => {
        ended?.(outcome, 0, failure);
        if (slot.revocation === done) slot.revocation = undefined;
        // Ended short (given back, fenced, or the hook failed): the claim is still ours.
        if (this.phases.holds(slot) && slot.phase === 'revoking') this.phases.move(slot, stopped ? 'halted' : 'owned');
        // Given back meanwhile: resume it if the claim is still held, claim it again if it was released. Nothing else
        // would ask: the generation that gave it back reconciled while this revocation was still under way.
        if (session === this.ctx.sessionsLost() && !this.ctx.stopping() && this.target.has(id)) void this.reconcile();
        this.maybeReportRebalance();
      });
    slot.revocation = done;
    return done;
  }

  /** Waits until no revocation is under way (those started while waiting included). */
  async revocationsDone(): Promise<void> {
    for (;;) {
      const pending = this.phases.all().flatMap((slot) => (slot.revocation ? [slot.revocation] : []));
      if (pending.length === 0) return;
      await Promise.all(pending);
    }
  }

  private claim(id: string): void {
    // A claim of ours may still exist: a stray, or one whose release is under way (it may fail).
    const before = this.phases.get(id);
    let mayHold = before !== undefined;
    const previousRelease = before?.release;
    const slot = this.phases.claim(id);
    let cancelled = false;
    let wake: (() => void) | undefined;
    slot.cancel = () => {
      cancelled = true;
      wake?.();
    };
    const generation = this.ctx.generation();
    const epoch = this.ctx.sessionEpoch();
    const ended = this.ctx.observer?.partitionHandoff(id, 'assign', generation);
    let outcome: 'done' | 'cancelled' | 'failed' = 'cancelled';
    let failure: unknown;
    let waitedSince = -1;
    let claimWaitMs = 0;
    let settled: Promise<void> | undefined;
    const gone = () => cancelled || this.ctx.stopping() || !this.target.has(id) || !this.phases.holds(slot);
    slot.task = (async () => {
      let unsubscribe: Unsubscribe | undefined;
      try {
        // Ours again: a release still running must finish first.
        // So must the steps of a lost session's slot: its `assign` hook would start fetching under this claim.
        if (slot.after !== undefined) await slot.after;
        if (previousRelease !== undefined && (await previousRelease)) mayHold = false;
        for (;;) {
          if (gone()) return;
          const value = JSON.stringify({ member: this.ctx.memberId(), generation });
          const claimed = await this.timed(this.ctx.backend.claim(this.ctx.group, id, value));
          // Either ours now, or another session's: no longer a stray of ours to release.
          mayHold = false;
          if (claimed) break;
          // Held by the previous owner until it has committed: wait for it to let go. A cancel that came while
          // the claim was in flight found nothing to wake, so look again before waiting.
          if (gone()) return;
          if (waitedSince < 0) waitedSince = performance.now();
          await new Promise<void>((resolve) => {
            wake = resolve;
            unsubscribe = this.ctx.backend.watchClaim(this.ctx.group, id, (claim) => {
              if (claim === null || claim.mine) resolve();
            });
          });
          unsubscribe?.();
          unsubscribe = undefined;
        }
        if (waitedSince >= 0) claimWaitMs = performance.now() - waitedSince;
        // A lost session took the claim with it; one given up now is released (and, if that fails, a stray).
        if (!this.phases.holds(slot)) return;
        if (gone()) {
          this.phases.move(slot, 'releasing');
          await this.releaseUnwanted(slot);
          return;
        }
        this.phases.move(slot, 'assigning');
        const assigned = this.ctx.hooks.assign([parsePartitionId(id)]);
        settled = assigned.catch(() => undefined);
        slot.assigned = settled;
        try {
          await assigned;
        } catch (err) {
          // Nothing was fetched yet: give the claim back and try the whole step again.
          if (this.phases.holds(slot) && (slot.phase === 'assigning' || slot.phase === 'revoking')) {
            this.phases.move(slot, 'releasing');
            await this.releaseUnwanted(slot);
          }
          throw err;
        }
        if (epoch === this.ctx.sessionEpoch() && this.phases.holds(slot) && this.phases.isHeld(id)) {
          // A revocation that began during the hook goes on from here.
          if (slot.phase === 'assigning') this.phases.move(slot, 'owned');
          this.pendingAssigned.push(id);
          outcome = 'done';
        }
      } catch (err) {
        outcome = 'failed';
        failure = err;
        this.ctx.report(
          isKielError(err)
            ? err
            : new KielError('ERR_BACKEND', `claiming ${id} failed: ${(err as Error)?.message ?? err}`, {
                retriable: true,
                cause: err,
              }),
        );
        // Try again on the next reconciliation. A failed claim call may still have created the claim (a lost reply):
        // released in the background unless it is wanted again.
        if (this.phases.holds(slot) && slot.phase === 'claiming') {
          this.phases.move(slot, 'stray');
          this.scheduleStrayRelease();
        }
        if (!this.phases.isHeld(id)) this.reconcileSoon();
      } finally {
        if (waitedSince >= 0 && claimWaitMs === 0) claimWaitMs = performance.now() - waitedSince;
        ended?.(outcome, claimWaitMs, failure);
        unsubscribe?.();
        if (this.phases.holds(slot)) {
          slot.cancel = undefined;
          if (settled !== undefined && slot.assigned === settled) slot.assigned = undefined;
          // Given up before the claim was made: nothing of ours is left, unless an earlier claim may be.
          if (slot.phase === 'claiming') {
            this.phases.move(slot, mayHold ? 'stray' : 'idle');
            if (mayHold) this.scheduleStrayRelease();
          }
        }
        // Given up (cancelled, found no longer wanted, or its session lost) while a later generation, or the new
        // session's, wants it: a reconciliation that ran meanwhile saw this claim still out and left it alone.
        if (!this.ctx.stopping() && this.target.has(id) && !this.phases.isHeld(id)) void this.reconcile();
        this.maybeReportRebalance();
      }
    })();
  }

  /** Releases the claim of a `releasing` slot, then forgets the partition, or keeps it as a stray if that failed. */
  private async releaseUnwanted(slot: Slot): Promise<void> {
    const released = await this.releaseClaim(slot);
    if (!this.phases.holds(slot) || slot.phase !== 'releasing') return;
    this.phases.move(slot, released ? 'idle' : 'stray');
    if (!released) this.scheduleStrayRelease();
  }

  /**
   * Releases a claim this member gives up: true once it is gone. Never throws: a release that fails (the backend is
   * unreachable, the session still alive) answers false, and the caller keeps the partition as a stray, released
   * again in the background, since the next owner waits for exactly this claim.
   */
  private releaseClaim(slot: Slot): Promise<boolean> {
    if (slot.release !== undefined) return slot.release;
    const id = slot.id;
    const done: Promise<boolean> = Promise.resolve()
      .then(() => this.timed(this.ctx.backend.release(this.ctx.group, id)))
      .then(
        () => true,
        (err: unknown) => {
          // Closing ends the session, and every claim of it with it.
          if (this.ctx.stopping()) return true;
          // Reported once: a stray released again says nothing more.
          if (slot.phase !== 'stray') {
            this.ctx.report(
              new KielError(
                'ERR_BACKEND',
                `releasing ${id} failed: ${(err as Error)?.message ?? err}; retrying, its next owner waits until then`,
                { retriable: true, cause: err },
              ),
            );
          }
          return false;
        },
      )
      .finally(() => {
        if (slot.release === done) slot.release = undefined;
      });
    slot.release = done;
    return done;
  }

  /** Reports the round trip of a backend call that succeeded to the observer. */
  private timed<T>(call: Promise<T>): Promise<T> {
    const observer = this.ctx.observer;
    if (!observer) return call;
    const started = performance.now();
    return call.then((value) => {
      observer.backendCall(performance.now() - started);
      return value;
    });
  }

  /** Starts fetching again a partition whose revocation failed and that is this member's again. */
  private resume(slot: Slot): void {
    const id = slot.id;
    this.phases.move(slot, 'assigning');
    const assigned = this.ctx.hooks.assign([parsePartitionId(id)]);
    const settled = assigned.catch(() => undefined);
    slot.assigned = settled;
    assigned.then(
      () => {
        if (slot.assigned === settled) slot.assigned = undefined;
        // A revocation that began during the hook goes on from here.
        if (this.phases.holds(slot) && slot.phase === 'assigning') this.phases.move(slot, 'owned');
        this.maybeReportRebalance();
      },
      (err: unknown) => {
        if (slot.assigned === settled) slot.assigned = undefined;
        if (this.phases.holds(slot) && slot.phase === 'assigning') this.phases.move(slot, 'halted');
        this.ctx.report(
          isKielError(err)
            ? err
            : new KielError('ERR_BACKEND', `resuming ${id} failed: ${(err as Error)?.message ?? err}`, {
                retriable: true,
                cause: err,
              }),
        );
        this.reconcileSoon();
      },
    );
  }

  /** Runs the reconciliation again shortly: once, however many of its steps failed meanwhile. */
  private reconcileSoon(): void {
    if (this.retryTimer !== undefined || this.ctx.stopping()) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.reconcile();
    }, RETRY_MS);
    this.retryTimer.unref();
  }

  scheduleStrayRelease(): void {
    if (this.strayTimer !== undefined || this.ctx.stopping()) return;
    this.strayTimer = setTimeout(() => {
      this.strayTimer = undefined;
      for (const slot of this.phases.inPhase('stray')) {
        // Wanted again meanwhile: the reconciliation claims it (the claim may still be this session's).
        if (this.target.has(slot.id)) continue;
        this.phases.move(slot, 'releasing');
        void this.releaseUnwanted(slot);
      }
      if (this.phases.inPhase('stray').length > 0) this.scheduleStrayRelease();
    }, RETRY_MS);
    this.strayTimer.unref();
  }

  /** Reports the handoff once this member owns exactly its target: the generation is applied. */
  private maybeReportRebalance(): void {
    // A revocation still under way may be of a partition given back meanwhile: it is fetched again only after it.
    if (this.reconcileAgain || this.phases.busy) return;
    if (this.phases.heldCount !== this.target.size) return;
    // A claim from an earlier generation may end while this one's revocations are still under way.
    for (const id of this.target) if (!this.phases.isHeld(id)) return;
    this.ctx.applied();
  }
}
