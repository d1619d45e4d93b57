import { KielError } from '../errors';

/**
 * What a member writes in a partition's marker (the backend's `markers/<topic:partition>`, persistent, last write
 * wins): the offsets it is about to hand to the application, and a stalled handler's report. The next owner reads it
 * to tell a crash in the middle of a range from a graceful handoff.
 */
export interface PartitionMarker {
  /** The member that wrote it. */
  readonly member: string;
  /** The offsets in flight: `from` to `to`, both included. Absent when the marker only reports a stall. */
  readonly from?: number;
  readonly to?: number;
  /**
   * Consecutive session losses seen so far with these offsets in flight, not counting the writer's own attempt: the
   * next owner adds one unless `released` says the writer handed the partition off gracefully.
   */
  readonly losses?: number;
  /** The writer committed and let go gracefully: its attempt is not a loss. */
  readonly released?: boolean;
  /** A handler that made no progress for `stallTimeout` (see the `stalled` event). */
  readonly stalled?: { readonly offset: number; readonly since: number; readonly member: string };
}

/** Offsets that were in flight at consecutive session losses, and how many such losses there were. */
export interface InheritedRange {
  readonly from: number;
  readonly to: number;
  readonly losses: number;
}

const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/** Parses a marker. Throws ERR_MALFORMED_RECORD naming `location`. */
export function parseMarker(text: string, location: string): PartitionMarker {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new KielError('ERR_MALFORMED_RECORD', `malformed marker at ${location}: not JSON`, { location, cause: err });
  }
  const m = value as Partial<PartitionMarker> | null;
  const bad = (why: string) =>
    new KielError('ERR_MALFORMED_RECORD', `malformed marker at ${location}: ${why}`, { location });
  if (m === null || typeof m !== 'object' || Array.isArray(m)) throw bad('expected a JSON object');
  if (typeof m.member !== 'string') throw bad('`member` must be a string');
  if ((m.from === undefined) !== (m.to === undefined)) throw bad('`from` and `to` go together');
  if (m.from !== undefined && !(isCount(m.from) && isCount(m.to) && m.from <= m.to!)) {
    throw bad('`from` and `to` must be offsets, from <= to');
  }
  if (m.losses !== undefined && !isCount(m.losses)) throw bad('`losses` must be a non-negative integer');
  if (m.released !== undefined && typeof m.released !== 'boolean') throw bad('`released` must be a boolean');
  const s = m.stalled;
  if (
    s !== undefined &&
    (s === null ||
      typeof s !== 'object' ||
      !isCount(s.offset) ||
      !Number.isFinite(s.since) ||
      typeof s.member !== 'string')
  ) {
    throw bad('`stalled` must be {"offset": n, "since": ms, "member": string}');
  }
  return m as PartitionMarker;
}

/**
 * What a new owner inherits from the marker it finds when it takes a partition whose committed offset is `committed`:
 * the offsets that were in flight when the previous owner's session ended (one more loss than the marker counts), or
 * that a graceful owner carried on (as many as it counts). Nothing when the marker names no range, or the range lies
 * wholly below the committed offset (it was handled and committed: the crash, if any, came later).
 */
export function inheritRange(marker: PartitionMarker | null, committed: number): InheritedRange | undefined {
  if (marker === null || marker.from === undefined || marker.to === undefined) return undefined;
  if (marker.to < committed) return undefined;
  const losses = (marker.losses ?? 0) + (marker.released === true ? 0 : 1);
  if (losses === 0) return undefined;
  return { from: Math.max(marker.from, committed), to: marker.to, losses };
}

/** How many consecutive session losses had `offset` in flight, by what was inherited. */
export function lossesAt(inherited: InheritedRange | undefined, offset: number): number {
  return inherited !== undefined && offset >= inherited.from && offset <= inherited.to ? inherited.losses : 0;
}

/** Options of poison-message detection (`poison` of a GroupedConsumer). */
export interface PoisonOptions<M = unknown> {
  /**
   * After how many consecutive session losses with the same offset in flight that message is poison: the next owner
   * calls {@link onPoison} instead of the handler, and moves past it. Default 3.
   */
  readonly maxAttempts?: number;
  /**
   * Called once with a poison message instead of the handler (produce it to a dead-letter topic, log it); the
   * consumer then counts it as handled and commits past it. `attempts` is the number of session losses it caused. A
   * hook that throws stops `run()` as a handler would; the message comes to the hook again.
   */
  readonly onPoison: (message: M, attempts: number) => Promise<void> | void;
}

/** Checks the `poison` option; returns the resolved form, or undefined when it is off. */
export function resolvePoison<M>(
  poison: PoisonOptions<M> | undefined,
): { maxAttempts: number; onPoison: PoisonOptions<M>['onPoison'] } | undefined {
  if (poison === undefined) return undefined;
  const invalid = (option: string, why: string) => new KielError('ERR_INVALID_CONFIG', `${option}: ${why}`, { option });
  if (poison === null || typeof poison !== 'object') {
    throw invalid('poison', 'expected { maxAttempts?, onPoison(message, attempts) }');
  }
  if (typeof poison.onPoison !== 'function') throw invalid('poison.onPoison', 'expected a function');
  const maxAttempts = poison.maxAttempts ?? 3;
  if (!(Number.isInteger(maxAttempts) && maxAttempts >= 1 && maxAttempts <= 1000)) {
    throw invalid('poison.maxAttempts', 'expected an integer from 1 to 1000');
  }
  return { maxAttempts, onPoison: poison.onPoison };
}

/** How a stalled partition is dealt with. */
export type StallAction = 'report' | 'handoff';

/** Checks `stallTimeout` and `stallAction`; returns undefined when stall detection is off. */
export function resolveStall(
  stallTimeout: number | undefined,
  stallAction: StallAction | undefined,
): { timeout: number; action: StallAction } | undefined {
  if (stallAction !== undefined && stallAction !== 'report' && stallAction !== 'handoff') {
    throw new KielError(
      'ERR_INVALID_CONFIG',
      `stallAction: expected 'report' or 'handoff', got ${JSON.stringify(stallAction)}`,
      {
        option: 'stallAction',
      },
    );
  }
  if (stallTimeout === undefined) {
    if (stallAction !== undefined) {
      throw new KielError('ERR_INVALID_CONFIG', 'stallAction: needs stallTimeout (stall detection is off without it)', {
        option: 'stallAction',
      });
    }
    return undefined;
  }
  if (!(Number.isInteger(stallTimeout) && stallTimeout >= 100 && stallTimeout <= 0x7fffffff)) {
    throw new KielError('ERR_INVALID_CONFIG', `stallTimeout: expected an integer from 100 to ${0x7fffffff} (ms)`, {
      option: 'stallTimeout',
    });
  }
  return { timeout: stallTimeout, action: stallAction ?? 'report' };
}

/**
 * How long a member that handed off a stalled partition keeps away from it, and the leader keeps it away from that
 * member: twice the stall timeout, at least 30 s.
 */
export function giveUpPeriod(stallTimeout: number): number {
  return Math.max(30_000, 2 * stallTimeout);
}
