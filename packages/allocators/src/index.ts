/**
 * @kiel/allocators: pure partition allocation strategies for kiel consumer groups, with validation and diffs.
 * No I/O; any strategy works with any backend.
 */
import { naive } from './strategies/naive';
import { range } from './strategies/range';
import { rendezvous } from './strategies/rendezvous';
import { roundRobin } from './strategies/round-robin';
import { sticky } from './strategies/sticky';
import { weighted } from './strategies/weighted';
import type { Strategy } from './types';

export type {
  Assignment,
  MemberId,
  PartitionId,
  PartitionInput,
  Strategy,
  StrategyContext,
  TopicPartition,
} from './types';
export { AllocationError } from './errors';
export type { AllocationErrorCode, AllocationErrorDetails } from './errors';
export { formatPartitionId, parsePartitionId } from './partition-id';
export { validate } from './validate';
export type { AllocationProblem } from './validate';
export { diff } from './diff';
export type { AssignmentDiff, MemberDiff, PartitionMove } from './diff';
export { naive, range, roundRobin, sticky, weighted, rendezvous };
export { createRendezvous } from './strategies/rendezvous';
export type { RendezvousOptions } from './strategies/rendezvous';

/** The name of a built-in strategy, as stored in the allocation record's `strategy` field. */
export type StrategyName = 'naive' | 'range' | 'roundRobin' | 'sticky' | 'weighted' | 'rendezvous';

/** The built-in strategies by name, for configuration by string. `rendezvous` is the plain (unbounded) one. */
export const strategies: Readonly<Record<StrategyName, Strategy>> = Object.freeze({
  naive,
  range,
  roundRobin,
  sticky,
  weighted,
  rendezvous,
});
