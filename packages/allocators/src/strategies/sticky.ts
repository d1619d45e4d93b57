import { partitionSet, previousOwners, sortedMembers, toAssignment } from '../input';
import type { Assignment, MemberId, PartitionInput, StrategyContext } from '../types';
import { heldCounts, settle } from './settle';

/**
 * Balanced and sticky, in the spirit of Kafka's StickyAssignor. Every member ends with `floor(P/n)` or
 * `floor(P/n) + 1` partitions; the `+1`s go to the members already holding that many (then in id order), each
 * member keeps as many of its `context.previous` partitions as that allows (an even share of each of its topics
 * when it must give some up), and the free partitions are dealt out in turn to the members still short.
 *
 * - Balance: member counts differ by at most 1.
 * - Movement: the fewest moves of any assignment meeting that balance, given `previous`. From a balanced
 *   `previous`, a leave moves exactly the leaver's partitions and a join exactly the `floor(P/(n+1))` the new member
 *   receives: the minimum possible.
 * - Without `previous` it equals `roundRobin`. Entries of `previous` for departed members or partitions no longer
 *   in the set are ignored. Zero members give an empty assignment.
 *
 * @throws {AllocationError} `ERR_DUPLICATE_MEMBER`, `ERR_INVALID_MEMBER`, `ERR_INVALID_PARTITION_ID`,
 *   `ERR_DUPLICATE_PARTITION`, `ERR_INVALID_ASSIGNMENT` (a `previous` that is not member → topic → array).
 * @example sticky(['a', 'b', 'c'], ['t:0', 't:1', 't:2'], { previous: { a: { t: [0, 1] }, b: { t: [2] } } })
 * // { a: { t: [0] }, b: { t: [2] }, c: { t: [1] } }
 */
export function sticky(
  members: readonly MemberId[],
  partitions: readonly PartitionInput[],
  context?: StrategyContext,
): Assignment {
  // Plain-JS callers may pass null.
  const previousAssignment = context?.previous;
  const sorted = sortedMembers(members);
  const set = partitionSet(partitions);
  const previous = previousOwners(previousAssignment, sorted, set);
  const n = sorted.length;
  if (n === 0) return {};
  const held = heldCounts(previous, n);
  const base = Math.floor(set.total / n);
  const targets = new Int32Array(n).fill(base);
  // The extra partitions go where they avoid a move: to the members holding the most, then by id.
  const order = Array.from({ length: n }, (_, m) => m).sort((a, b) => held[b] - held[a] || a - b);
  for (let k = 0; k < set.total % n; k++) targets[order[k]]++;
  return toAssignment(sorted, set, settle(set, previous, targets));
}
