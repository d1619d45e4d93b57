import { parsePartitionId, type Assignment } from '@kiel/allocators';
import { KielError } from '../errors';

/**
 * The group's published allocation, stored as JSON in the backend's `allocation` record (kiel's layout, extended
 * with a generation so that every member can tell new from old).
 */
export interface AllocationRecord {
  /** Increases by one with every publication. */
  readonly generation: number;
  /** Member id of the leader that published it. */
  readonly leader: string;
  /** Name of the strategy that computed it. */
  readonly strategy: string;
  /** The members it was computed for, sorted. */
  readonly members: readonly string[];
  /** The partitions it covers, sorted, as `topic:partition`. */
  readonly partitions: readonly string[];
  /** member → topic → partition ids. */
  readonly assignment: Assignment;
  /**
   * Named members (`instanceId`) whose session ended and whose partitions wait for them (`rebalanceDelay`): member →
   * wall-clock ms (`Date.now()`) at which the leader moves their partitions. They are also listed in `members`.
   * Absent when nobody is waited for.
   */
  readonly waiting?: Readonly<Record<string, number>>;
  /** The named members (`instanceId`) among `members`, whose partitions wait for them when they go. Absent if none. */
  readonly named?: readonly string[];
  /**
   * Moves the leader held back (`maxMovesPerRebalance`): how many partitions still sit with another member than the
   * strategy wants. The leader publishes the next step once this generation's handoffs are done. Absent when 0.
   */
  readonly throttled?: number;
}

/**
 * The group's `control` record, written by operators (freeze) and by named members that leave for good: JSON
 * `{ frozen?: {...}, leaving?: {...} }`. Absent means not frozen and no notices.
 */
export interface ControlRecord {
  /** While present, the leader publishes no new allocation: members keep what they have, joining members wait. */
  readonly frozen?: { readonly since: number; readonly reason?: string };
  /**
   * Graceful-leave notices: named member → the creation order of the entry that left. The leader moves such a
   * member's partitions at once instead of waiting `rebalanceDelay`. A member clears its own notice when it joins.
   */
  readonly leaving?: Readonly<Record<string, number>>;
}

/** What a claim on a partition holds. */
export interface ClaimRecord {
  readonly member: string;
  readonly generation: number;
}

function malformed(location: string, why: string, cause?: unknown): KielError {
  return new KielError('ERR_MALFORMED_RECORD', `malformed record at ${location}: ${why}`, {
    location,
    ...(cause !== undefined ? { cause } : {}),
  });
}

function parseJson(text: string, location: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw malformed(location, `not JSON (${(err as Error).message})`, err);
  }
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/** Parses the shared partition set: a JSON list of `topic:partition`. Throws ERR_MALFORMED_RECORD naming `location`. */
export function parsePartitionSet(text: string, location: string): string[] {
  const value = parseJson(text, location);
  if (!isStringArray(value)) throw malformed(location, 'expected a JSON list of "topic:partition" strings');
  for (const id of value) {
    try {
      parsePartitionId(id);
    } catch (err) {
      throw malformed(location, `${JSON.stringify(id)} is not "topic:partition"`, err);
    }
  }
  return value;
}

/** Serializes a partition set, sorted and without duplicates. */
export function formatPartitionSet(partitions: Iterable<string>): string {
  return JSON.stringify([...new Set(partitions)].sort(compareStrings));
}

/** Parses an allocation record. Throws ERR_MALFORMED_RECORD naming `location`. */
export function parseAllocation(text: string, location: string): AllocationRecord {
  const value = parseJson(text, location) as Partial<AllocationRecord> | null;
  if (value === null || typeof value !== 'object') throw malformed(location, 'expected a JSON object');
  const { generation, leader, strategy, members, partitions, assignment } = value;
  if (!Number.isSafeInteger(generation) || (generation as number) < 0)
    throw malformed(location, '`generation` must be a non-negative integer');
  if (typeof leader !== 'string') throw malformed(location, '`leader` must be a string');
  if (typeof strategy !== 'string') throw malformed(location, '`strategy` must be a string');
  if (!isStringArray(members)) throw malformed(location, '`members` must be a list of strings');
  if (!isStringArray(partitions)) throw malformed(location, '`partitions` must be a list of strings');
  if (assignment === null || typeof assignment !== 'object' || Array.isArray(assignment)) {
    throw malformed(location, '`assignment` must be an object');
  }
  for (const [member, topics] of Object.entries(assignment)) {
    if (topics === null || typeof topics !== 'object' || Array.isArray(topics)) {
      throw malformed(location, `assignment of ${member} must be an object of topic → partition ids`);
    }
    for (const [topic, ids] of Object.entries(topics)) {
      if (!Array.isArray(ids) || !ids.every((id) => Number.isSafeInteger(id) && id >= 0)) {
        throw malformed(location, `assignment of ${member} for ${topic} must be a list of partition ids`);
      }
    }
  }
  const { waiting, named, throttled } = value;
  if (
    waiting !== undefined &&
    (waiting === null ||
      typeof waiting !== 'object' ||
      Array.isArray(waiting) ||
      !Object.values(waiting).every((t) => Number.isFinite(t)))
  ) {
    throw malformed(location, '`waiting` must be an object of member → ms');
  }
  if (named !== undefined && !isStringArray(named)) throw malformed(location, '`named` must be a list of strings');
  if (throttled !== undefined && !(Number.isSafeInteger(throttled) && throttled >= 0)) {
    throw malformed(location, '`throttled` must be a non-negative integer');
  }
  return value as AllocationRecord;
}

/** Parses the control record. Throws ERR_MALFORMED_RECORD naming `location`. */
export function parseControl(text: string, location: string): ControlRecord {
  const value = parseJson(text, location) as Partial<ControlRecord> | null;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw malformed(location, 'expected a JSON object');
  }
  const { frozen, leaving } = value;
  if (
    frozen !== undefined &&
    (frozen === null ||
      typeof frozen !== 'object' ||
      !Number.isFinite(frozen.since) ||
      (frozen.reason !== undefined && typeof frozen.reason !== 'string'))
  ) {
    throw malformed(location, '`frozen` must be {"since": ms, "reason"?: string}');
  }
  if (
    leaving !== undefined &&
    (leaving === null ||
      typeof leaving !== 'object' ||
      Array.isArray(leaving) ||
      !Object.values(leaving).every((o) => Number.isFinite(o)))
  ) {
    throw malformed(location, '`leaving` must be an object of member → order');
  }
  return value as ControlRecord;
}

/** Parses a claim. Throws ERR_MALFORMED_RECORD naming `location`. */
export function parseClaim(text: string, location: string): ClaimRecord {
  const value = parseJson(text, location) as Partial<ClaimRecord> | null;
  if (
    value === null ||
    typeof value !== 'object' ||
    typeof value.member !== 'string' ||
    !Number.isSafeInteger(value.generation)
  ) {
    throw malformed(location, 'expected {"member": string, "generation": integer}');
  }
  return value as ClaimRecord;
}

/** The `topic:partition` ids an assignment gives one member. */
export function partitionsOf(assignment: Assignment, member: string): Set<string> {
  const mine = new Set<string>();
  const topics = assignment[member];
  if (!topics) return mine;
  for (const [topic, ids] of Object.entries(topics)) for (const id of ids) mine.add(`${topic}:${id}`);
  return mine;
}

/** Code-unit order: the same everywhere, whatever the locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
