/**
 * Stable codes for everything this package reports, both thrown ({@link AllocationError}) and returned by
 * `validate` ({@link AllocationProblem}). Callers branch on these strings, never on `instanceof`, which breaks
 * when two copies of the package are installed.
 */
export type AllocationErrorCode =
  /** The same member id appears twice in the member list. */
  | 'ERR_DUPLICATE_MEMBER'
  /** A member id is not a non-empty string. */
  | 'ERR_INVALID_MEMBER'
  /** A partition is not `topic:partition` with a legal Kafka topic name and a partition in 0..2^31-1. */
  | 'ERR_INVALID_PARTITION_ID'
  /** The same partition appears twice in the partition list. */
  | 'ERR_DUPLICATE_PARTITION'
  /** A member weight is not a finite number greater than zero. */
  | 'ERR_INVALID_WEIGHT'
  /** A strategy option (such as `loadFactor`) is out of range. */
  | 'ERR_INVALID_OPTION'
  /** An assignment or context value does not have the documented shape. */
  | 'ERR_INVALID_ASSIGNMENT'
  /** `validate`: a partition in the set is assigned to nobody. */
  | 'ERR_MISSING_PARTITION'
  /** `validate`: a partition is assigned more than once (to one member or to several). */
  | 'ERR_DUPLICATE_ASSIGNMENT'
  /** `validate`: an assignment names a partition that is not in the set. */
  | 'ERR_UNKNOWN_PARTITION'
  /** `validate`: an assignment names a member that is not in the member list. */
  | 'ERR_UNKNOWN_MEMBER';

/** Where an {@link AllocationError} or problem points: the offending member and/or partition. */
export interface AllocationErrorDetails {
  /** The member id concerned, when one is. */
  member?: string;
  /** The partition concerned, as `topic:partition` when it could be formatted, else as given. */
  partition?: string;
  /** The offending input exactly as it was passed (a raw weight, option value or malformed partition). */
  item?: unknown;
}

/**
 * The one error this package throws. Every cause is bad input, so nothing is `retriable`: calling again with the
 * same arguments fails the same way.
 *
 * @example
 * try {
 *   sticky(['a', 'a'], ['t:0']);
 * } catch (err) {
 *   if ((err as AllocationError).code === 'ERR_DUPLICATE_MEMBER') console.error((err as AllocationError).member);
 * }
 */
export class AllocationError extends Error implements AllocationErrorDetails {
  override readonly name = 'AllocationError';
  /** Stable machine-readable cause. */
  readonly code: AllocationErrorCode;
  /** Always false: the input itself is wrong. */
  readonly retriable = false as const;
  /** The member id concerned, when one is. */
  readonly member?: string;
  /** The partition concerned, when one is. */
  readonly partition?: string;
  /** The offending input exactly as it was passed. */
  readonly item?: unknown;

  constructor(code: AllocationErrorCode, message: string, details: AllocationErrorDetails = {}) {
    super(message);
    this.code = code;
    if (details.member !== undefined) this.member = details.member;
    if (details.partition !== undefined) this.partition = details.partition;
    if ('item' in details) this.item = details.item;
  }
}
