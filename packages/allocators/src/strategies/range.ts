import { partitionSet, sortedMembers, toAssignment } from '../input';
import type { Assignment, MemberId, PartitionInput } from '../types';

/**
 * Contiguous ranges per topic, like Kafka's RangeAssignor: for each topic, the partitions in ascending order are cut
 * into one run per member (members in sorted order), and the first `count % members` members get one extra.
 *
 * - Balance: within each topic, counts differ by at most 1. Across topics the extras land on the same
 *   low-sorting members, so overall counts can differ by up to the number of topics.
 * - Movement: no stickiness; a join or leave shifts the range boundaries of every topic.
 * - Zero members give an empty assignment.
 *
 * @throws {AllocationError} `ERR_DUPLICATE_MEMBER`, `ERR_INVALID_MEMBER`, `ERR_INVALID_PARTITION_ID`,
 *   `ERR_DUPLICATE_PARTITION`.
 * @example range(['a', 'b'], ['t:0', 't:1', 't:2']) // { a: { t: [0, 1] }, b: { t: [2] } }
 */
export function range(members: readonly MemberId[], partitions: readonly PartitionInput[]): Assignment {
  const sorted = sortedMembers(members);
  const set = partitionSet(partitions);
  if (sorted.length === 0) return {};
  const n = sorted.length;
  const owners = new Int32Array(set.total);
  for (let t = 0; t < set.topics.length; t++) {
    const count = set.numbers[t].length;
    const base = Math.floor(count / n);
    const extra = count % n;
    let index = set.offsets[t];
    for (let m = 0; m < n; m++) {
      const size = base + (m < extra ? 1 : 0);
      owners.fill(m, index, index + size);
      index += size;
    }
  }
  return toAssignment(sorted, set, owners);
}
