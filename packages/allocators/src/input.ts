/**
 * Input checking and the compact shapes the strategies work on. Internal: not exported from the package.
 */
import { AllocationError } from './errors';
import { describePartition, isLegalPartition, isLegalTopic, parsePartitionNumber } from './partition-id';
import type { Assignment, MemberId, PartitionInput } from './types';

/** Code-unit order, the same on every platform and locale (what `Array.prototype.sort()` does by default). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Checks member ids and returns them sorted, so that input order cannot change a result. */
export function sortedMembers(members: readonly MemberId[]): string[] {
  if (!Array.isArray(members)) {
    throw new AllocationError('ERR_INVALID_MEMBER', 'members must be an array of member id strings', {
      item: members,
    });
  }
  const seen = new Set<string>();
  for (const member of members) {
    if (typeof member !== 'string' || member.length === 0) {
      throw new AllocationError('ERR_INVALID_MEMBER', `Invalid member id ${JSON.stringify(member)}`, {
        item: member,
      });
    }
    if (seen.has(member)) {
      throw new AllocationError('ERR_DUPLICATE_MEMBER', `Member id ${JSON.stringify(member)} is given twice`, {
        member,
      });
    }
    seen.add(member);
  }
  return [...members].sort();
}

/**
 * A checked partition set: topics in code-unit order, each with its partition numbers ascending. A partition's
 * global index is `offsets[topic] + position`, which is how the strategies address partitions.
 */
export interface PartitionSet {
  topics: string[];
  numbers: Int32Array[];
  /** `offsets[t]` is the global index of topic t's first partition; `offsets[topics.length]` is the total. */
  offsets: Int32Array;
  total: number;
  topicIndex: Map<string, number>;
}

/** Checks partitions (strings or objects), rejects malformed ids and duplicates, and indexes them. */
export function partitionSet(partitions: readonly PartitionInput[]): PartitionSet {
  if (!Array.isArray(partitions)) {
    throw new AllocationError('ERR_INVALID_PARTITION_ID', 'partitions must be an array', { item: partitions });
  }
  const byTopic = new Map<string, number[]>();
  // Ids usually arrive grouped by topic: reuse the previous topic and its list instead of slicing and looking up.
  let lastTopic = '';
  let lastList: number[] | undefined;
  for (const input of partitions) {
    let topic: unknown;
    let partition: number;
    if (typeof input === 'string') {
      const colon = input.indexOf(':');
      partition = colon < 0 ? -1 : parsePartitionNumber(input, colon + 1);
      if (lastList !== undefined && partition >= 0 && colon === lastTopic.length && input.startsWith(lastTopic)) {
        lastList.push(partition);
        continue;
      }
      topic = input.slice(0, colon);
    } else if (input !== null && typeof input === 'object') {
      topic = input.topic;
      partition = isLegalPartition(input.partition) ? input.partition : -1;
    } else {
      topic = undefined;
      partition = -1;
    }
    let list = byTopic.get(topic as string);
    if (list === undefined) {
      if (!isLegalTopic(topic)) partition = -1;
      else byTopic.set(topic, (list = []));
    }
    if (partition < 0 || list === undefined) {
      throw new AllocationError(
        'ERR_INVALID_PARTITION_ID',
        `Invalid partition ${JSON.stringify(describePartition(input))}: expected "topic:partition" with a legal ` +
          'Kafka topic name and a partition number in 0..2147483647 written in plain decimal',
        { partition: describePartition(input), item: input },
      );
    }
    list.push(partition);
    lastTopic = topic as string;
    lastList = list;
  }
  const topics = [...byTopic.keys()].sort();
  const numbers: Int32Array[] = [];
  const offsets = new Int32Array(topics.length + 1);
  const topicIndex = new Map<string, number>();
  let total = 0;
  topics.forEach((topic, t) => {
    const sorted = Int32Array.from(byTopic.get(topic) as number[]).sort();
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i] === sorted[i - 1]) {
        const partition = `${topic}:${sorted[i]}`;
        throw new AllocationError('ERR_DUPLICATE_PARTITION', `Partition ${partition} is given twice`, { partition });
      }
    }
    numbers.push(sorted);
    offsets[t] = total;
    topicIndex.set(topic, t);
    total += sorted.length;
  });
  offsets[topics.length] = total;
  return { topics, numbers, offsets, total, topicIndex };
}

/** Global index of `topic:partition` in the set, or -1. Binary search: no per-call allocation. */
export function indexOf(set: PartitionSet, topic: number, partition: number): number {
  const numbers = set.numbers[topic];
  let low = 0;
  let high = numbers.length - 1;
  while (low <= high) {
    const mid = (low + high) >>> 1;
    const value = numbers[mid];
    if (value < partition) low = mid + 1;
    else if (value > partition) high = mid - 1;
    else return set.offsets[topic] + mid;
  }
  return -1;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** Throws unless `assignment` has the documented shape: member → topic → array of partition numbers. */
export function checkAssignmentShape(assignment: unknown, what: string): asserts assignment is Assignment {
  if (!isPlainObject(assignment)) {
    throw new AllocationError('ERR_INVALID_ASSIGNMENT', `${what} must be an object of member → topic → numbers`, {
      item: assignment,
    });
  }
  for (const member of Object.keys(assignment)) {
    const topics = assignment[member];
    if (!isPlainObject(topics)) {
      throw new AllocationError('ERR_INVALID_ASSIGNMENT', `${what}: member ${member} must map topics to arrays`, {
        member,
        item: topics,
      });
    }
    for (const topic of Object.keys(topics)) {
      if (!Array.isArray(topics[topic])) {
        throw new AllocationError('ERR_INVALID_ASSIGNMENT', `${what}: ${member} → ${topic} must be an array`, {
          member,
          item: topics[topic],
        });
      }
    }
  }
}

/**
 * Previous owner (index into `members`) of each partition in `set`, or -1. Entries for departed members, vanished
 * partitions or malformed ids are ignored: the previous assignment may predate the current membership. A partition
 * listed under two members goes to the one that sorts first, so key order in `previous` cannot matter. `undefined`
 * and `null` mean no previous assignment.
 */
export function previousOwners(previous: unknown, members: readonly string[], set: PartitionSet): Int32Array {
  const owners = new Int32Array(set.total).fill(-1);
  if (previous === undefined || previous === null) return owners;
  checkAssignmentShape(previous, 'context.previous');
  members.forEach((member, m) => {
    if (!Object.prototype.hasOwnProperty.call(previous, member)) return;
    const topics = previous[member];
    for (const topic of Object.keys(topics)) {
      const t = set.topicIndex.get(topic);
      if (t === undefined) continue;
      for (const partition of topics[topic]) {
        if (!isLegalPartition(partition)) continue;
        const index = indexOf(set, t, partition);
        if (index >= 0 && owners[index] < 0) owners[index] = m;
      }
    }
  });
  return owners;
}

/**
 * Weight of each member (same order as `members`). A member without an entry weighs 1. Every entry present must be a
 * finite number greater than zero, including entries for members not in the list, since a bad value is a
 * configuration mistake whoever it names.
 */
export function memberWeights(weights: unknown, members: readonly string[]): Float64Array {
  const result = new Float64Array(members.length).fill(1);
  if (weights === undefined || weights === null) return result;
  if (!isPlainObject(weights)) {
    throw new AllocationError('ERR_INVALID_WEIGHT', 'context.weights must be an object of member → number', {
      item: weights,
    });
  }
  for (const member of Object.keys(weights)) {
    const weight = weights[member];
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight <= 0) {
      throw new AllocationError(
        'ERR_INVALID_WEIGHT',
        `Weight ${String(weight)} for member ${member} must be a finite number greater than zero`,
        { member, item: weight },
      );
    }
  }
  members.forEach((member, m) => {
    if (Object.prototype.hasOwnProperty.call(weights, member)) result[m] = weights[member] as number;
  });
  return result;
}

/**
 * Builds the wire assignment from an owner per partition (index into `members`, -1 for none). Members in sorted
 * order, topics in code-unit order, partition numbers ascending. `Object.fromEntries` defines own properties, so ids
 * such as `__proto__` stay data.
 */
export function toAssignment(members: readonly string[], set: PartitionSet, owners: Int32Array): Assignment {
  const perMember: Array<Array<[string, number[]]> | undefined> = new Array(members.length);
  const lastTopic = new Int32Array(members.length).fill(-1);
  for (let t = 0; t < set.topics.length; t++) {
    const numbers = set.numbers[t];
    const offset = set.offsets[t];
    for (let i = 0; i < numbers.length; i++) {
      const m = owners[offset + i];
      if (m < 0) continue;
      let entries = perMember[m];
      if (entries === undefined) perMember[m] = entries = [];
      if (lastTopic[m] !== t) {
        lastTopic[m] = t;
        entries.push([set.topics[t], []]);
      }
      entries[entries.length - 1][1].push(numbers[i]);
    }
  }
  const result: Array<[string, Record<string, number[]>]> = [];
  members.forEach((member, m) => {
    const entries = perMember[m];
    if (entries !== undefined) result.push([member, Object.fromEntries(entries)]);
  });
  return Object.fromEntries(result);
}
