import { partitionSet, sortedMembers, toAssignment } from '../input';
import type { Assignment, MemberId, PartitionInput } from '../types';

/**
 * Round robin that is balanced per topic as well as overall: topics in code-unit order, partitions ascending within
 * each, dealt to the members (sorted) in turn, the turn carrying over from one topic to the next. kiel warns that
 * its allocator ignores how one topic's partitions cluster; here every topic is spread explicitly, and the carried
 * turn hands each topic's remainder to the members that got none of the previous one's.
 *
 * - Balance: counts differ by at most 1 overall and by at most 1 within every topic, so no member holds all of a
 *   topic that has at least as many partitions as there are members.
 * - Movement: no stickiness; a join or leave changes the dealing of most partitions.
 * - Zero members give an empty assignment.
 *
 * @throws {AllocationError} `ERR_DUPLICATE_MEMBER`, `ERR_INVALID_MEMBER`, `ERR_INVALID_PARTITION_ID`,
 *   `ERR_DUPLICATE_PARTITION`.
 * @example roundRobin(['a', 'b'], ['t:0', 't:1', 'u:0']) // { a: { t: [0], u: [0] }, b: { t: [1] } }
 */
export function roundRobin(members: readonly MemberId[], partitions: readonly PartitionInput[]): Assignment {
  const sorted = sortedMembers(members);
  const set = partitionSet(partitions);
  if (sorted.length === 0) return {};
  const owners = new Int32Array(set.total);
  for (let i = 0; i < set.total; i++) owners[i] = i % sorted.length;
  return toAssignment(sorted, set, owners);
}
