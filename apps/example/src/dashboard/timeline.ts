import type { AllocationRecord } from '@kiel/consumer';
import { partitionsOf } from '../inspect';

/** Why a member left the member set, as far as an observer can tell. */
export type Departure = 'left' | 'expired';

/** What an observer knows about a member whose entry it just saw vanish. */
export interface DepartureEvidence {
  /** A leave notice of its in the control record (`departed`, or `leaving` for a named member). */
  noticed?: boolean;
  /** Claims it still held in a read taken after its entry was seen gone. */
  claimsStillHeld: number;
  /** Milliseconds between its last commit seen and its entry vanishing; null if none was seen. */
  lastCommitBeforeGoneMs: number | null;
  /** Whether a commit of its was seen after its entry vanished (a leaving member's final commit). */
  committedAfterGone: boolean;
  /** How recent a commit must be to count as a sign of life; about the polling interval plus some slack. */
  aliveWithinMs: number;
}

/**
 * Left or expired. A member says so before its entry goes (a `departed` or `leaving` notice in the control record):
 * that is exact. Members of older versions write no notice; for them the signs are indirect. A graceful leave removes
 * the member entry first, then commits and releases each claim: claims that outlive the entry, a commit after it, or
 * a commit just before it, are signs of a member alive to the end. A session or lease that ends takes the entry and
 * every claim at once, after the member was silent for the whole session timeout. An idle member of an older version
 * that leaves faster than the observer reads looks expired.
 */
export function judgeDeparture(e: DepartureEvidence): Departure {
  if (e.noticed === true || e.claimsStillHeld > 0 || e.committedAfterGone) return 'left';
  if (e.lastCommitBeforeGoneMs !== null && e.lastCommitBeforeGoneMs <= e.aliveWithinMs) return 'left';
  return 'expired';
}

/** One published generation on the dashboard's rebalance timeline. */
export interface TimelineEntry {
  generation: number;
  /** `Date.now()` when the dashboard saw the allocation published. */
  publishedAt: number;
  leader: string;
  members: string[];
  /** Members in this generation and not in the one before. */
  joined: string[];
  /** Members of the generation before that left gracefully (they still held claims while their entry went). */
  left: string[];
  /** Members of the generation before whose session or lease ended (entry and claims vanished together). */
  expired: string[];
  /** One line: "joined m3", "left m1, expired m2", "partitions changed", or "before the dashboard started". */
  cause: string;
  /** Partitions whose owner differs from the generation before (null for the first one seen). */
  moved: number | null;
  partitions: number;
  /**
   * Milliseconds from the publication until every partition was claimed by its new owner; null while the handoff
   * runs, or when a newer generation came first (`superseded`).
   */
  handoffMs: number | null;
  superseded: boolean;
}

/**
 * The rebalance timeline, built from what a watcher of the backend sees: the member set, the published allocation
 * and the claims. Pure bookkeeping: the caller feeds observations with their time.
 *
 * The cause of a generation is inferred from the member sets of consecutive allocations: a member that appears
 * joined; one that disappears left or expired, as the caller judged when it saw the entry go
 * ({@link judgeDeparture}).
 */
export class RebalanceTimeline {
  readonly entries: TimelineEntry[] = [];
  private record: AllocationRecord | undefined;
  private readonly departures = new Map<string, Departure>();
  private claims = new Map<string, string>();
  private readonly partitionsChanged = new WeakMap<TimelineEntry, boolean>();
  private readonly limit: number;

  constructor(options: { limit?: number } = {}) {
    this.limit = options.limit ?? 50;
  }

  /**
   * A member's entry disappeared, and how it went as the caller judged it (see {@link judgeDeparture}). A later call
   * for the same member corrects an earlier judgement, in the entries already written too.
   */
  memberGone(member: string, how: Departure): void {
    if (this.departures.get(member) === how) return;
    this.departures.set(member, how);
    // The leader may have published the generation without it before the judgement came: correct it there.
    for (const entry of this.entries.slice(-5)) {
      if (entry.left.includes(member) || entry.expired.includes(member)) this.describe(entry);
    }
  }

  /** How a departed member went, if it was seen going. */
  departure(member: string): Departure | undefined {
    return this.departures.get(member);
  }

  /** A (possibly new) allocation was read at `at`. */
  allocation(record: AllocationRecord, at: number): void {
    const previous = this.record;
    if (previous && record.generation <= previous.generation) return;
    this.record = record;
    const last = this.entries.at(-1);
    if (last && last.handoffMs === null && last.moved !== null) last.superseded = true;

    const owners = (r: AllocationRecord) => {
      const map = new Map<string, string>();
      for (const m of r.members) for (const p of partitionsOf(r.assignment, m)) map.set(p, m);
      return map;
    };
    const now = owners(record);
    let moved: number | null = null;
    let joined: string[] = [];
    let gone: string[] = [];
    let partitionsChanged = false;
    if (previous) {
      const before = owners(previous);
      moved = [...now].filter(([p, m]) => before.get(p) !== m).length;
      joined = record.members.filter((m) => !previous.members.includes(m));
      gone = previous.members.filter((m) => !record.members.includes(m));
      partitionsChanged =
        previous.partitions.length !== record.partitions.length ||
        previous.partitions.some((p, i) => record.partitions[i] !== p);
    }
    const entry: TimelineEntry = {
      generation: record.generation,
      publishedAt: at,
      leader: record.leader,
      members: [...record.members],
      joined,
      left: gone,
      expired: [],
      cause: '',
      moved,
      partitions: record.partitions.length,
      handoffMs: null,
      superseded: false,
    };
    this.partitionsChanged.set(entry, partitionsChanged);
    this.describe(entry);
    this.entries.push(entry);
    if (this.entries.length > this.limit) this.entries.splice(0, this.entries.length - this.limit);
    this.checkHandoff(at);
  }

  /** Sorts the departed members of an entry into left and expired, and writes its cause. */
  private describe(entry: TimelineEntry): void {
    const gone = [...entry.left, ...entry.expired];
    // A member not seen going (the dashboard missed it, or its read is still under way) counts as having left.
    entry.expired = gone.filter((m) => this.departures.get(m) === 'expired');
    entry.left = gone.filter((m) => this.departures.get(m) !== 'expired');
    if (entry.moved === null) {
      entry.cause = 'before the dashboard started';
      return;
    }
    const parts = [
      ...entry.joined.map((m) => `joined ${m}`),
      ...entry.left.map((m) => `left ${m}`),
      ...entry.expired.map((m) => `expired ${m}`),
    ];
    if (this.partitionsChanged.get(entry)) parts.push('partitions changed');
    entry.cause = parts.length > 0 ? parts.join(', ') : 'republished';
  }

  /** The claims as read at `at`: partition → holder. */
  observeClaims(claims: ReadonlyMap<string, string>, at: number): void {
    this.claims = new Map(claims);
    this.checkHandoff(at);
  }

  /** The current generation's handoff is done when every partition is claimed by the member it is allocated to. */
  private checkHandoff(at: number): void {
    const entry = this.entries.at(-1);
    const record = this.record;
    // The first generation seen was published before the dashboard looked: its handoff time is unknown.
    if (!entry || !record || entry.handoffMs !== null || entry.superseded || entry.moved === null) return;
    for (const m of record.members) {
      for (const p of partitionsOf(record.assignment, m)) if (this.claims.get(p) !== m) return;
    }
    entry.handoffMs = Math.max(0, at - entry.publishedAt);
  }
}
