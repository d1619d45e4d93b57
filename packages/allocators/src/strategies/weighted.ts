import { memberWeights, partitionSet, previousOwners, sortedMembers, toAssignment } from '../input';
import type { Assignment, MemberId, PartitionInput, StrategyContext } from '../types';
import { heldCounts, settle } from './settle';

/**
 * Shares in proportion to `context.weights` (capacity), sticky where it can be. Member `i`'s exact quota is
 * `P * w_i / W`; everyone gets its floor, and the partitions left over go by largest remainder (Hamilton's method),
 * except that members already holding their quota's ceiling go first so that a seat never moves for a rounding
 * difference (remaining ties: most partitions held, then id). Then, as in `sticky`, each member keeps its `previous` partitions up to its share and the rest are
 * dealt out in turn.
 *
 * - Weights: a missing weight is 1. A weight must be a finite number greater than zero.
 * - Balance: every member's count is its quota rounded down or up (`|count - P * w_i / W| < 1`).
 * - Movement: the fewest moves of any assignment within that bound, given `previous`. A leave moves the leaver's
 *   partitions and a join the newcomer's share, plus whatever members whose rounded share shrank must give up.
 * - Equal weights behave as `sticky`. Zero members give an empty assignment.
 *
 * @throws {AllocationError} `ERR_INVALID_WEIGHT` (naming the member) and the errors of `sticky`.
 * @example weighted(['a', 'b'], ['t:0', 't:1', 't:2'], { weights: { a: 2 } }) // { a: { t: [0, 2] }, b: { t: [1] } }
 */
export function weighted(
  members: readonly MemberId[],
  partitions: readonly PartitionInput[],
  context?: StrategyContext,
): Assignment {
  // Plain-JS callers may pass null.
  const { previous: previousAssignment, weights: memberWeightMap } = context ?? {};
  const sorted = sortedMembers(members);
  const set = partitionSet(partitions);
  const weights = memberWeights(memberWeightMap, sorted);
  const previous = previousOwners(previousAssignment, sorted, set);
  const n = sorted.length;
  if (n === 0) return {};
  const held = heldCounts(previous, n);
  // Scaled by the largest weight so the sum cannot overflow, and summed in sorted member order: floating-point
  // addition is not associative, so the order must not vary.
  let largest = 0;
  for (let m = 0; m < n; m++) largest = Math.max(largest, weights[m]);
  let total = 0;
  for (let m = 0; m < n; m++) total += weights[m] /= largest;
  const targets = new Int32Array(n);
  const remainders = new Float64Array(n);
  let assigned = 0;
  for (let m = 0; m < n; m++) {
    let quota = (set.total * weights[m]) / total;
    // A quota that is a whole number up to rounding error (integer weights often give one) counts as whole, so
    // it gets no extra seat and stays within its bound.
    const whole = Math.round(quota);
    if (Math.abs(quota - whole) <= 1e-9 * Math.max(1, whole)) quota = whole;
    targets[m] = Math.min(set.total, Math.floor(quota));
    remainders[m] = quota - targets[m];
    assigned += targets[m];
  }
  // Leftover seats: members with a fractional quota only (so no one exceeds its ceiling), holders of the ceiling
  // first, then largest remainder, then the most held (as in sticky), then id. Rounding can in theory leave too few fractional quotas; the fallback
  // ordering still hands every partition out.
  const sticks = (m: number): number => (held[m] > targets[m] ? 1 : 0);
  const order = Array.from({ length: n }, (_, m) => m).sort(
    (a, b) =>
      (remainders[b] > 0 ? 1 : 0) - (remainders[a] > 0 ? 1 : 0) ||
      sticks(b) - sticks(a) ||
      remainders[b] - remainders[a] ||
      held[b] - held[a] ||
      a - b,
  );
  for (let k = 0; assigned < set.total; k = (k + 1) % n, assigned++) targets[order[k]]++;
  // Rounding could in theory also overshoot by a seat; take it back from the end of the same order.
  for (let k = n - 1; assigned > set.total; k = (k + n - 1) % n) {
    if (targets[order[k]] > 0) {
      targets[order[k]]--;
      assigned--;
    }
  }
  return toAssignment(sorted, set, settle(set, previous, targets));
}
