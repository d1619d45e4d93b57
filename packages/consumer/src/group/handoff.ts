/**
 * Where each partition is in this member's handoff: one map from partition to its phase, changed only by
 * {@link PartitionPhases.move}, which throws on a move the handoff never makes. STATES.md draws the phases and moves.
 */

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

/** Phases whose step is under way: a generation is not reported applied while any partition is in one. */
const BUSY: ReadonlySet<Phase> = new Set<Phase>(['claiming', 'assigning', 'revoking']);

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
}

/** The phases of every partition of this member that is not idle. */
export class PartitionPhases {
  private readonly slots = new Map<string, Slot>();

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

  /** Whether a step of a claim, an assignment or a revocation is under way for any partition. */
  get busy(): boolean {
    for (const slot of this.slots.values()) if (BUSY.has(slot.phase)) return true;
    return false;
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
   * the old slot; the claim waits for it.
   */
  claim(id: string): Slot {
    const before = this.slots.get(id);
    check(id, before?.phase ?? 'idle', 'claiming');
    const slot: Slot = { id, phase: 'claiming' };
    this.slots.set(id, slot);
    return slot;
  }

  /** Moves `slot` (which must be the partition's) to `to`; `idle` forgets the partition. */
  move(slot: Slot, to: Phase | 'idle'): void {
    if (!this.holds(slot)) throw new Error(`partition handoff: ${slot.id} moved by a step of an older slot`);
    check(slot.id, slot.phase, to);
    if (to === 'idle') this.slots.delete(slot.id);
    else slot.phase = to;
  }

  /** Forgets every partition: the session, and every claim of it, is gone. Steps of the old slots change nothing. */
  clear(): void {
    this.slots.clear();
  }
}

function check(id: string, from: Phase | 'idle', to: Phase | 'idle'): void {
  if (!MOVES[from].includes(to)) throw new Error(`partition handoff: no move of ${id} from ${from} to ${to}`);
}
