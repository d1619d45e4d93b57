import { partitionSet, sortedMembers } from '../input';
import type { Assignment, MemberId, PartitionInput } from '../types';

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
  if (sorted.length === 0) return {};
  const ids: string[] = [];
  set.topics.forEach((topic, t) => {
    for (const partition of set.numbers[t]) ids.push(`${topic}:${partition}`);
  });
  ids.sort();
  const perMember = sorted.map(() => new Map<string, number[]>());
  ids.forEach((id, i) => {
    const colon = id.indexOf(':');
    const topic = id.slice(0, colon);
    const topics = perMember[i % sorted.length];
    let list = topics.get(topic);
    if (list === undefined) topics.set(topic, (list = []));
    list.push(Number(id.slice(colon + 1)));
  });
  const result: Array<[string, Record<string, number[]>]> = [];
  sorted.forEach((member, m) => {
    if (perMember[m].size > 0) result.push([member, Object.fromEntries(perMember[m])]);
  });
  return Object.fromEntries(result);
}
