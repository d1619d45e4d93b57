import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { parsePartitionId, type Assignment } from '@kiel/allocators';
import { KielError } from '../errors';
import { partitionId } from '../partition-id';

/**
 * The group's published allocation, stored in the backend's `allocation` record. Small records are kiel's JSON
 * layout (format 1, extended with a generation so that every member can tell new from old); large ones the compact
 * format 2 (see {@link formatAllocation}). Read either with {@link parseAllocation}.
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
  /**
   * Stalled partitions handed off (`stallAction: 'handoff'`): `topic:partition` → the member that gave it up and the
   * wall-clock ms until which the leader gives it to another live member. Expired entries mean nothing.
   */
  readonly givenUp?: Readonly<Record<string, { readonly member: string; readonly until: number }>>;
  /**
   * Graceful leaves of members without an instanceId: member id → `Date.now()` of the leave, written before the member
   * entry goes and kept {@link DEPARTED_KEEP_MS}, so that an observer (`kiel dashboard`) tells a leave from a session
   * that expired. The leader ignores it.
   */
  readonly departed?: Readonly<Record<string, number>>;
}

/** How long a `departed` notice stays in the control record: each member that writes one drops the older ones. */
export const DEPARTED_KEEP_MS = 60_000;

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

function unsupported(location: string, format: unknown): KielError {
  return new KielError(
    'ERR_RECORD_FORMAT',
    `the record at ${location} has format ${JSON.stringify(format)}, which this version of @kiel/consumer cannot ` +
      `read (it reads formats 1 and 2): a newer kiel wrote it. Upgrade this member; it keeps its partitions meanwhile`,
    { location },
  );
}

function parseJson(text: string, location: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw malformed(location, `not JSON (${(err as Error).message})`, err);
  }
}

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

/**
 * Records whose format-1 text (plain JSON) is at most this many bytes are written in format 1, which every version
 * of kiel reads; larger ones in format 2. Mixed-version groups keep working while their records stay small.
 */
export const PLAIN_RECORD_LIMIT = 64 * 1024;

/**
 * The largest record text a leader writes, in bytes. ZooKeeper refuses a znode over 1 MB (`jute.maxbuffer`, 1,048,575
 * bytes by default, the path and packet header included) and etcd a request over 1.5 MiB: below both, with room for
 * the request's own bytes.
 */
export const MAX_RECORD_BYTES = 1_000_000;

/** The characters of a list of ids: a lower bound of its JSON's size in bytes. */
function idChars(ids: readonly string[]): number {
  let n = 0;
  for (const id of ids) n += id.length;
  return n;
}

/** Format 2: a small JSON envelope whose `body` is the base64 of the raw-deflated JSON body. */
interface Envelope {
  readonly format: 2;
  readonly body: string;
}

/** Format 2 body of the partition set: topics (sorted) and the sorted ids of each, as {@link encodeIds} runs. */
interface PartitionSetBody {
  readonly topics: ReadonlyArray<readonly [topic: string, ids: string]>;
}

/**
 * Format 2 body of the allocation: the sorted members, then per topic (sorted) its sorted partition ids and the
 * index (into `members`) of each one's owner, run-length encoded ({@link encodeOwners}).
 */
interface AllocationBody {
  readonly members: readonly string[];
  readonly topics: ReadonlyArray<readonly [topic: string, ids: string, owners: string]>;
}

function deflate(body: unknown): string {
  return deflateRawSync(JSON.stringify(body)).toString('base64');
}

function inflate(envelope: { body?: unknown }, location: string): unknown {
  if (typeof envelope.body !== 'string') throw malformed(location, 'format 2 needs a base64 `body`');
  let text: string;
  try {
    text = inflateRawSync(Buffer.from(envelope.body, 'base64')).toString('utf8');
  } catch (err) {
    throw malformed(location, `the body does not inflate (${(err as Error).message})`, err);
  }
  return parseJson(text, location);
}

/**
 * Sorted, distinct non-negative integers as runs: `gap` or `gap+extra` separated by commas, where `gap` is the
 * distance from the end of the previous run (the first run's start itself) and `extra` how many consecutive ids
 * follow the first. `[0..99999]` is `0+99999`; `[3,4,5,10]` is `3+2,5`.
 */
function encodeIds(ids: readonly number[]): string {
  const out: string[] = [];
  let previous = -1;
  for (let i = 0; i < ids.length;) {
    const start = ids[i]!;
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j]! + 1) j++;
    const gap = previous < 0 ? start : start - previous;
    out.push(j > i ? `${gap}+${j - i}` : String(gap));
    previous = ids[j]!;
    i = j + 1;
  }
  return out.join(',');
}

function decodeIds(text: unknown, location: string): number[] {
  if (typeof text !== 'string') throw malformed(location, 'partition ids must be a string of runs');
  const ids: number[] = [];
  if (text === '') return ids;
  let previous = -1;
  for (const run of text.split(',')) {
    const plus = run.indexOf('+');
    const gap = Number(plus < 0 ? run : run.slice(0, plus));
    const extra = plus < 0 ? 0 : Number(run.slice(plus + 1));
    if (
      !Number.isSafeInteger(gap) ||
      !Number.isSafeInteger(extra) ||
      gap < 0 ||
      extra < 0 ||
      (previous >= 0 && gap < 1)
    ) {
      throw malformed(location, `${JSON.stringify(run)} is not a run of partition ids`);
    }
    const start = previous < 0 ? gap : previous + gap;
    for (let id = start; id <= start + extra; id++) ids.push(id);
    previous = start + extra;
  }
  return ids;
}

/** Owner indexes as runs: `index` or `index*count`, comma-separated. */
function encodeOwners(owners: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < owners.length;) {
    let j = i;
    while (j + 1 < owners.length && owners[j + 1] === owners[i]) j++;
    out.push(j > i ? `${owners[i]}*${j - i + 1}` : String(owners[i]));
    i = j + 1;
  }
  return out.join(',');
}

function decodeOwners(text: unknown, count: number, members: number, location: string): number[] {
  if (typeof text !== 'string') throw malformed(location, 'owners must be a string of runs');
  const owners: number[] = [];
  if (text !== '') {
    for (const run of text.split(',')) {
      const star = run.indexOf('*');
      const index = Number(star < 0 ? run : run.slice(0, star));
      const times = star < 0 ? 1 : Number(run.slice(star + 1));
      if (!Number.isSafeInteger(index) || index < 0 || index >= members || !Number.isSafeInteger(times) || times < 1) {
        throw malformed(location, `${JSON.stringify(run)} is not a run of owners among ${members} members`);
      }
      for (let k = 0; k < times; k++) owners.push(index);
    }
  }
  if (owners.length !== count) throw malformed(location, `${owners.length} owners for ${count} partitions`);
  return owners;
}

/** topic → its partition ids, ascending, from `topic:partition` ids. */
function byTopic(partitions: Iterable<string>): Map<string, number[]> {
  const topics = new Map<string, number[]>();
  for (const id of partitions) {
    const { topic, partition } = parsePartitionId(id);
    let ids = topics.get(topic);
    if (!ids) topics.set(topic, (ids = []));
    ids.push(partition);
  }
  for (const ids of topics.values()) ids.sort((a, b) => a - b);
  return new Map([...topics].sort(([a], [b]) => compareStrings(a, b)));
}

/** The `format` of a parsed record: 1 for kiel's plain layout, else what the envelope says. */
function formatOf(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 1;
  return 'format' in value ? (value as { format: unknown }).format : 1;
}

/**
 * Parses the shared partition set, in either format: a JSON list of `topic:partition` (format 1), or format 2. Throws
 * ERR_MALFORMED_RECORD naming `location`, or ERR_RECORD_FORMAT for a format this version does not know.
 */
export function parsePartitionSet(text: string, location: string): string[] {
  const value = parseJson(text, location);
  const format = formatOf(value);
  if (format === 2) {
    const body = inflate(value as Envelope, location) as Partial<PartitionSetBody> | null;
    if (body === null || typeof body !== 'object' || !Array.isArray(body.topics)) {
      throw malformed(location, 'format 2 body needs `topics`');
    }
    const out: string[] = [];
    for (const entry of body.topics) {
      if (!Array.isArray(entry) || typeof entry[0] !== 'string') throw malformed(location, 'bad topic entry');
      for (const id of decodeIds(entry[1], location)) out.push(partitionId(entry[0], id));
    }
    return out.sort(compareStrings);
  }
  if (format !== 1) throw unsupported(location, format);
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

/**
 * Serializes a partition set, sorted and without duplicates: format 1 (a JSON list) while that is at most
 * {@link PLAIN_RECORD_LIMIT} bytes, format 2 (topics and id runs, deflated) beyond.
 */
export function formatPartitionSet(partitions: Iterable<string>): string {
  const sorted = [...new Set(partitions)].sort(compareStrings);
  if (idChars(sorted) <= PLAIN_RECORD_LIMIT) {
    const plain = JSON.stringify(sorted);
    if (Buffer.byteLength(plain) <= PLAIN_RECORD_LIMIT) return plain;
  }
  const body: PartitionSetBody = { topics: [...byTopic(sorted)].map(([topic, ids]) => [topic, encodeIds(ids)]) };
  const envelope: Envelope = { format: 2, body: deflate(body) };
  return JSON.stringify(envelope);
}

/**
 * Serializes an allocation record. Format 1 (kiel's plain JSON) while it is at most {@link PLAIN_RECORD_LIMIT} bytes,
 * so that members of older versions read it; beyond, format 2: `{format: 2, generation, leader, strategy, body}`
 * whose `body` holds the members and, per topic, the partition ids and each one's owner as runs, deflated and
 * base64-encoded. An allocation of 1,000 members × 100,000 partitions takes tens of kilobytes where format 1 takes
 * megabytes. Throws ERR_RECORD_TOO_LARGE when even format 2 is over {@link MAX_RECORD_BYTES}.
 */
export function formatAllocation(record: AllocationRecord): string {
  // The partition ids alone tell most large records apart without rendering megabytes of JSON first.
  if (idChars(record.partitions) <= PLAIN_RECORD_LIMIT) {
    const plain = JSON.stringify(record);
    if (Buffer.byteLength(plain) <= PLAIN_RECORD_LIMIT) return plain;
  }
  const index = new Map(record.members.map((m, i) => [m, i]));
  // topic → partition id → owner index
  const ownerOf = new Map<string, Map<number, number>>();
  for (const [member, topics] of Object.entries(record.assignment)) {
    const i = index.get(member);
    if (i === undefined) continue;
    for (const [topic, ids] of Object.entries(topics)) {
      let owners = ownerOf.get(topic);
      if (!owners) ownerOf.set(topic, (owners = new Map()));
      for (const id of ids) owners.set(id, i);
    }
  }
  const topics: Array<[string, string, string]> = [];
  for (const [topic, ids] of byTopic(record.partitions)) {
    const of = ownerOf.get(topic);
    const owners = ids.map((id) => of?.get(id) ?? -1);
    if (owners.includes(-1)) {
      throw new KielError('ERR_INVALID_ALLOCATION', `the allocation leaves partitions of ${topic} without an owner`);
    }
    topics.push([topic, encodeIds(ids), encodeOwners(owners)]);
  }
  const body: AllocationBody = { members: record.members, topics };
  const text = JSON.stringify({
    format: 2,
    generation: record.generation,
    leader: record.leader,
    strategy: record.strategy,
    ...(record.waiting !== undefined ? { waiting: record.waiting } : {}),
    ...(record.named !== undefined ? { named: record.named } : {}),
    ...(record.throttled !== undefined ? { throttled: record.throttled } : {}),
    body: deflate(body),
  });
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_RECORD_BYTES) {
    throw new KielError(
      'ERR_RECORD_TOO_LARGE',
      `the allocation of ${record.members.length} members × ${record.partitions.length} partitions takes ${bytes} ` +
        `bytes even compressed, over the ${MAX_RECORD_BYTES} bytes that ZooKeeper and etcd accept by default; the ` +
        `previous allocation stays in force. Split the group (fewer topics or partitions per group)`,
    );
  }
  return text;
}

/**
 * Parses an allocation record in either format (see {@link formatAllocation}). Throws ERR_MALFORMED_RECORD naming
 * `location`, or ERR_RECORD_FORMAT for a format this version does not know (written by a newer kiel). The record
 * returned is frozen, and the same text parsed again returns the same object (copy it to change it).
 */
export function parseAllocation(text: string, location: string): AllocationRecord {
  // Every member of a group in one process reads the same record at each generation: parse it once. The record
  // handed out is frozen, since they share it.
  if (lastParsed?.text === text) return lastParsed.record;
  const record = freezeRecord(parseAllocationText(text, location));
  lastParsed = { text, record };
  return record;
}

/** The last allocation record parsed in this process, and its text. */
let lastParsed: { readonly text: string; readonly record: AllocationRecord } | undefined;

/** Freezes a parsed record down to its partition id lists. */
function freezeRecord(record: AllocationRecord): AllocationRecord {
  for (const topics of Object.values(record.assignment)) {
    for (const ids of Object.values(topics)) Object.freeze(ids);
    Object.freeze(topics);
  }
  Object.freeze(record.assignment);
  Object.freeze(record.members);
  Object.freeze(record.partitions);
  if (record.waiting) Object.freeze(record.waiting);
  if (record.named) Object.freeze(record.named);
  return Object.freeze(record);
}

function parseAllocationText(text: string, location: string): AllocationRecord {
  const value = parseJson(text, location) as Partial<AllocationRecord> | null;
  if (value === null || typeof value !== 'object') throw malformed(location, 'expected a JSON object');
  const format = formatOf(value);
  if (format === 2) return parseCompactAllocation(value as Partial<AllocationRecord> & { body?: unknown }, location);
  if (format !== 1) throw unsupported(location, format);
  const { generation, leader, strategy, members, partitions, assignment } = value;
  checkHeader(value, location);
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
  return {
    generation: generation!,
    leader: leader!,
    strategy: strategy!,
    members,
    partitions,
    assignment,
    ...parseExtras(value, location),
  };
}

/**
 * The optional fields of issue 19 (`waiting`, `named`, `throttled`): top-level in both formats, so that format 2
 * carries them in its envelope, next to the generation.
 */
function parseExtras(
  value: Partial<AllocationRecord>,
  location: string,
): Pick<AllocationRecord, 'waiting' | 'named' | 'throttled'> {
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
  return {
    ...(waiting !== undefined ? { waiting } : {}),
    ...(named !== undefined ? { named } : {}),
    ...(throttled !== undefined ? { throttled } : {}),
  };
}

function checkHeader(value: Partial<AllocationRecord>, location: string): void {
  const { generation, leader, strategy } = value;
  if (!Number.isSafeInteger(generation) || (generation as number) < 0)
    throw malformed(location, '`generation` must be a non-negative integer');
  if (typeof leader !== 'string') throw malformed(location, '`leader` must be a string');
  if (typeof strategy !== 'string') throw malformed(location, '`strategy` must be a string');
}

function parseCompactAllocation(
  value: Partial<AllocationRecord> & { body?: unknown },
  location: string,
): AllocationRecord {
  checkHeader(value, location);
  const body = inflate(value, location) as Partial<AllocationBody> | null;
  if (body === null || typeof body !== 'object' || !isStringArray(body.members) || !Array.isArray(body.topics)) {
    throw malformed(location, 'format 2 body needs `members` and `topics`');
  }
  const members = body.members;
  const assignment: Record<string, Record<string, number[]>> = {};
  for (const member of members) assignment[member] = {};
  const partitions: string[] = [];
  for (const entry of body.topics) {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string') throw malformed(location, 'bad topic entry');
    const topic = entry[0];
    const ids = decodeIds(entry[1], location);
    const owners = decodeOwners(entry[2], ids.length, members.length, location);
    for (let i = 0; i < ids.length; i++) {
      partitions.push(partitionId(topic, ids[i]!));
      const mine = assignment[members[owners[i]!]!]!;
      (mine[topic] ??= []).push(ids[i]!);
    }
  }
  partitions.sort(compareStrings);
  return {
    generation: value.generation!,
    leader: value.leader!,
    strategy: value.strategy!,
    members,
    partitions,
    assignment,
    ...parseExtras(value, location),
  };
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
  const { departed } = value;
  if (
    departed !== undefined &&
    (departed === null ||
      typeof departed !== 'object' ||
      Array.isArray(departed) ||
      !Object.values(departed).every((at) => Number.isFinite(at)))
  ) {
    throw malformed(location, '`departed` must be an object of member → ms');
  }
  const { givenUp } = value;
  if (
    givenUp !== undefined &&
    (givenUp === null ||
      typeof givenUp !== 'object' ||
      Array.isArray(givenUp) ||
      !Object.values(givenUp).every(
        (g) => g !== null && typeof g === 'object' && typeof g.member === 'string' && Number.isFinite(g.until),
      ))
  ) {
    throw malformed(location, '`givenUp` must be an object of partition → {"member": string, "until": ms}');
  }
  return value as ControlRecord;
}

/**
 * Reads a claim's value (`{"member", "generation"}`), or null when it is not one: a claim only says who holds a
 * partition, so a reader that finds a malformed one treats the partition as held by nobody it knows.
 */
export function readClaim(text: string): ClaimRecord | null {
  let value: Partial<ClaimRecord> | null;
  try {
    value = JSON.parse(text) as Partial<ClaimRecord> | null;
  } catch {
    return null;
  }
  if (
    value === null ||
    typeof value !== 'object' ||
    typeof value.member !== 'string' ||
    !Number.isSafeInteger(value.generation)
  ) {
    return null;
  }
  return { member: value.member, generation: value.generation as number };
}

/** The `topic:partition` ids an assignment gives one member. */
export function partitionsOf(assignment: Assignment, member: string): Set<string> {
  const mine = new Set<string>();
  const topics = assignment[member];
  if (!topics) return mine;
  for (const [topic, ids] of Object.entries(topics)) for (const id of ids) mine.add(partitionId(topic, id));
  return mine;
}

/** Code-unit order: the same everywhere, whatever the locale. */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
