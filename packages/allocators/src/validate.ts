import type { AllocationErrorCode } from './errors';
import { compareStrings } from './input';
import { describePartition, isLegalPartition, isLegalTopic, parsePartitionNumber } from './partition-id';
import type { MemberId, PartitionId, PartitionInput } from './types';

/** One thing wrong with an assignment, as reported by {@link validate}. */
export interface AllocationProblem {
  /** Stable cause; see {@link AllocationErrorCode}. */
  code: AllocationErrorCode;
  /** A sentence for logs. */
  message: string;
  /** The member concerned, when one is. */
  member?: MemberId;
  /** The partition concerned (`topic:partition`, or the malformed input as text), when one is. */
  partition?: string;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Checks an assignment against the live members and the partition set before it is published: every partition
 * exactly once, only known members, well-formed ids. It never throws; it returns every problem found (an empty
 * array means the assignment is good), in a stable order, each naming its member and/or partition.
 *
 * Partitions listed under an unknown member count as unassigned, since no live member would consume them.
 *
 * @example
 * validate({ a: { t: [0, 0] }, z: { t: [1] } }, ['a', 'b'], ['t:0', 't:1', 't:2']);
 * // ERR_DUPLICATE_ASSIGNMENT t:0 (a), ERR_UNKNOWN_MEMBER z, ERR_MISSING_PARTITION t:1, ERR_MISSING_PARTITION t:2
 */
export function validate(
  assignment: unknown,
  members: readonly MemberId[],
  partitions: readonly PartitionInput[],
): AllocationProblem[] {
  const problems: AllocationProblem[] = [];
  const known = new Set<string>();
  for (const member of Array.isArray(members) ? members : []) {
    if (typeof member !== 'string' || member.length === 0) {
      problems.push({ code: 'ERR_INVALID_MEMBER', message: `Invalid member id ${JSON.stringify(member)}` });
    } else if (known.has(member)) {
      problems.push({ code: 'ERR_DUPLICATE_MEMBER', message: `Member ${member} is listed twice`, member });
    } else {
      known.add(member);
    }
  }
  if (!Array.isArray(members)) problems.push({ code: 'ERR_INVALID_MEMBER', message: 'members must be an array' });

  // The partition set, as canonical ids in input order.
  const expected = new Set<PartitionId>();
  for (const input of Array.isArray(partitions) ? partitions : []) {
    let id: string | undefined;
    if (typeof input === 'string') {
      const colon = input.indexOf(':');
      if (colon >= 0 && isLegalTopic(input.slice(0, colon)) && parsePartitionNumber(input.slice(colon + 1)) >= 0) {
        id = input;
      }
    } else if (isPlainObject(input) && isLegalTopic(input.topic) && isLegalPartition(input.partition)) {
      id = `${input.topic}:${input.partition}`;
    }
    if (id === undefined) {
      const partition = describePartition(input);
      problems.push({
        code: 'ERR_INVALID_PARTITION_ID',
        message: `Partition ${JSON.stringify(partition)} in the partition set is not "topic:partition"`,
        partition,
      });
    } else if (expected.has(id)) {
      problems.push({ code: 'ERR_DUPLICATE_PARTITION', message: `Partition ${id} is in the set twice`, partition: id });
    } else {
      expected.add(id);
    }
  }
  if (!Array.isArray(partitions)) {
    problems.push({ code: 'ERR_INVALID_PARTITION_ID', message: 'partitions must be an array' });
  }

  if (!isPlainObject(assignment)) {
    problems.push({
      code: 'ERR_INVALID_ASSIGNMENT',
      message: 'The assignment must be an object: member → topic → numbers',
    });
    assignment = {};
  }
  const owners = new Map<PartitionId, MemberId>();
  const record = assignment as Record<string, unknown>;
  for (const member of Object.keys(record).sort(compareStrings)) {
    const topics = record[member];
    const live = known.has(member);
    if (!live) {
      problems.push({ code: 'ERR_UNKNOWN_MEMBER', message: `Member ${member} is not in the group`, member });
    }
    if (!isPlainObject(topics)) {
      problems.push({ code: 'ERR_INVALID_ASSIGNMENT', message: `Member ${member} must map topics to arrays`, member });
      continue;
    }
    for (const topic of Object.keys(topics)) {
      const numbers = topics[topic];
      if (!Array.isArray(numbers)) {
        problems.push({ code: 'ERR_INVALID_ASSIGNMENT', message: `${member} → ${topic} must be an array`, member });
        continue;
      }
      for (const number of numbers as unknown[]) {
        const partition = `${topic}:${String(number)}`;
        if (!isLegalTopic(topic) || !isLegalPartition(number)) {
          problems.push({
            code: 'ERR_INVALID_PARTITION_ID',
            message: `Member ${member} is assigned malformed partition ${JSON.stringify(partition)}`,
            member,
            partition,
          });
        } else if (!expected.has(partition)) {
          problems.push({
            code: 'ERR_UNKNOWN_PARTITION',
            message: `Member ${member} is assigned ${partition}, which is not in the partition set`,
            member,
            partition,
          });
        } else if (!live) {
          continue;
        } else if (owners.has(partition)) {
          const first = owners.get(partition);
          problems.push({
            code: 'ERR_DUPLICATE_ASSIGNMENT',
            message:
              first === member
                ? `Partition ${partition} is assigned to ${member} twice`
                : `Partition ${partition} is assigned to both ${first} and ${member}`,
            member,
            partition,
          });
        } else {
          owners.set(partition, member);
        }
      }
    }
  }
  for (const partition of expected) {
    if (!owners.has(partition)) {
      problems.push({
        code: 'ERR_MISSING_PARTITION',
        message: `Partition ${partition} is assigned to nobody`,
        partition,
      });
    }
  }
  return problems;
}
