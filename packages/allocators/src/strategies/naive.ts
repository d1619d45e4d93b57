import { partitionSet, sortedMembers } from '../input';
import type { Assignment, MemberId, PartitionInput } from '../types';

const POWERS_OF_TEN = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];

/**
 * A topic's partition numbers in the order their decimal strings sort ("10" before "2"), without building strings:
 * each number's digits left-aligned to ten places, then its digit count to put a prefix ("1") before its
 * extensions ("10"). The key stays below 2^53, so a numeric sort of doubles is exact.
 */
function stringOrder(numbers: Int32Array): Float64Array {
  const keys = new Float64Array(numbers.length);
  for (let i = 0; i < numbers.length; i++) {
    const value = numbers[i];
    let digits = 1;
    while (digits < 10 && value >= POWERS_OF_TEN[digits]) digits++;
    keys[i] = value * POWERS_OF_TEN[10 - digits] * 16 + digits;
  }
  keys.sort();
  for (let i = 0; i < keys.length; i++) {
    const digits = keys[i] % 16;
    keys[i] = (keys[i] - digits) / 16 / POWERS_OF_TEN[10 - digits];
  }
  return keys;
}

/**
 * kiel's `naive_allocator`, exactly: sort the members and the partition ids as plain strings (so `t:10` comes before
 * `t:2`), then deal the partitions out to the members in turn. Each member's numbers within a topic are listed in
 * that dealing order, which is why they are not ascending. It is the consumer's default strategy.
 *
 * - Balance: member partition counts differ by at most 1. Because the ids of one topic are contiguous in string
 *   order, counts within each topic also differ by at most 1.
 * - Movement: no stickiness. A join or leave shifts the dealing for every partition after the change, so up to all
 *   partitions can move.
 * - Zero members give an empty assignment.
 *
 * @throws {AllocationError} `ERR_DUPLICATE_MEMBER`, `ERR_INVALID_MEMBER`, `ERR_INVALID_PARTITION_ID`,
 *   `ERR_DUPLICATE_PARTITION`.
 * @example naive(['b', 'a'], ['t:0', 't:1', 't:2']) // { a: { t: [0, 2] }, b: { t: [1] } }
 */
export function naive(members: readonly MemberId[], partitions: readonly PartitionInput[]): Assignment {
  const sorted = sortedMembers(members);
  const set = partitionSet(partitions);
  const n = sorted.length;
  if (n === 0) return {};
  // Whole ids compare as "topic:" prefixes first (":" ends every topic), then as decimal strings within a topic.
  const topicOrder = set.topics
    .map((topic, t) => ({ prefix: `${topic}:`, t }))
    .sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0));
  const perMember: Array<Array<[string, number[]]>> = sorted.map(() => []);
  let dealt = 0;
  for (const { t } of topicOrder) {
    const topic = set.topics[t];
    for (const partition of stringOrder(set.numbers[t])) {
      const entries = perMember[dealt++ % n];
      const last = entries[entries.length - 1];
      if (last !== undefined && last[0] === topic) last[1].push(partition);
      else entries.push([topic, [partition]]);
    }
  }
  const result: Array<[string, Record<string, number[]>]> = [];
  sorted.forEach((member, m) => {
    if (perMember[m].length > 0) result.push([member, Object.fromEntries(perMember[m])]);
  });
  return Object.fromEntries(result);
}
