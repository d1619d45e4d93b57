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
  return value as AllocationRecord;
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
