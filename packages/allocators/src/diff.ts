import { AllocationError } from './errors';
import { checkAssignmentShape, compareStrings } from './input';
import { isLegalPartition, isLegalTopic } from './partition-id';
import type { Assignment, MemberId, PartitionId } from './types';

/** What one member gains and loses between two assignments. */
export interface MemberDiff {
  /** Partitions it is assigned now and was not before: start consuming these. */
  added: PartitionId[];
  /** Partitions it was assigned before and is not now: commit and release these. */
  revoked: PartitionId[];
}

/** A partition that changed hands between two members. */
export interface PartitionMove {
  partition: PartitionId;
  from: MemberId;
  to: MemberId;
}

/** The difference between two assignments; every list is in (topic, partition) order. */
export interface AssignmentDiff {
  /** Every member that gains or loses something, in id order. Unaffected members are absent. */
  members: Record<MemberId, MemberDiff>;
  /** Partitions owned in both assignments, by different members. `moved.length` is the rebalance's cost. */
  moved: PartitionMove[];
  /** Partitions owned only in `next` (for example a topic that grew). */
  appeared: PartitionId[];
  /** Partitions owned only in `previous` (for example a deleted topic). */
  disappeared: PartitionId[];
  /** How many partitions kept their owner. */
  unchanged: number;
}

type Owners = Map<string, Map<number, MemberId>>;

function ownersOf(assignment: Assignment, what: string): Owners {
  checkAssignmentShape(assignment, what);
  const owners: Owners = new Map();
  for (const member of Object.keys(assignment)) {
    const topics = assignment[member];
    for (const topic of Object.keys(topics)) {
      let byNumber = owners.get(topic);
      if (byNumber === undefined) owners.set(topic, (byNumber = new Map()));
      for (const number of topics[topic]) {
        const partition = `${topic}:${String(number)}`;
        if (!isLegalTopic(topic) || !isLegalPartition(number)) {
          throw new AllocationError('ERR_INVALID_PARTITION_ID', `${what}: ${member} has malformed ${partition}`, {
            member,
            partition,
            item: number,
          });
        }
        const other = byNumber.get(number);
        if (other !== undefined) {
          throw new AllocationError(
            'ERR_DUPLICATE_ASSIGNMENT',
            `${what}: partition ${partition} is assigned to both ${other} and ${member}`,
            { member, partition },
          );
        }
        byNumber.set(number, member);
      }
    }
  }
  return owners;
}

/**
 * Compares two assignments: per member what it gains (`added`) and loses (`revoked`), and which partitions moved
 * between members. The consumer's handoff works from the per-member lists; metrics count `moved`.
 *
 * @throws {AllocationError} `ERR_INVALID_ASSIGNMENT`, `ERR_INVALID_PARTITION_ID`, or `ERR_DUPLICATE_ASSIGNMENT`
 *   when either argument is not a valid assignment.
 * @example diff({ a: { t: [0, 1] } }, { a: { t: [0] }, b: { t: [1] } })
 * // members: { a: { added: [], revoked: ['t:1'] }, b: { added: ['t:1'], revoked: [] } },
 * // moved: [{ partition: 't:1', from: 'a', to: 'b' }], appeared: [], disappeared: [], unchanged: 1
 */
export function diff(previous: Assignment, next: Assignment): AssignmentDiff {
  const before = ownersOf(previous, 'previous');
  const after = ownersOf(next, 'next');
  const changes = new Map<MemberId, MemberDiff>();
  const change = (member: MemberId): MemberDiff => {
    let entry = changes.get(member);
    if (entry === undefined) changes.set(member, (entry = { added: [], revoked: [] }));
    return entry;
  };
  const result: AssignmentDiff = { members: {}, moved: [], appeared: [], disappeared: [], unchanged: 0 };
  const topics = [...new Set([...before.keys(), ...after.keys()])].sort(compareStrings);
  for (const topic of topics) {
    const was = before.get(topic) ?? new Map<number, MemberId>();
    const is = after.get(topic) ?? new Map<number, MemberId>();
    const numbers = [...new Set([...was.keys(), ...is.keys()])].sort((a, b) => a - b);
    for (const number of numbers) {
      const partition = `${topic}:${number}`;
      const from = was.get(number);
      const to = is.get(number);
      if (from === to) {
        result.unchanged++;
        continue;
      }
      if (from !== undefined) change(from).revoked.push(partition);
      if (to !== undefined) change(to).added.push(partition);
      if (from === undefined) result.appeared.push(partition);
      else if (to === undefined) result.disappeared.push(partition);
      else result.moved.push({ partition, from, to });
    }
  }
  result.members = Object.fromEntries([...changes.entries()].sort(([a], [b]) => compareStrings(a, b)));
  return result;
}
