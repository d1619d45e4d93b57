/** A group member's id, for example `"host:pid:uuid"`. Any non-empty string. */
export type MemberId = string;

/** A partition's id on the wire: `"topic:partition"`, for example `"orders:7"`. */
export type PartitionId = string;

/** A partition as an object, accepted wherever a {@link PartitionId} is. */
export interface TopicPartition {
  topic: string;
  partition: number;
}

/** What strategies and `validate` accept for a partition. */
export type PartitionInput = PartitionId | TopicPartition;

/**
 * Who consumes what: member → topic → partition numbers. Plain JSON, the wire format of the stored allocation
 * record. Members that receive nothing may be absent.
 */
export type Assignment = Record<MemberId, Record<string, number[]>>;

/** Extra input for a strategy. Strategies ignore keys they do not know. */
export interface StrategyContext {
  /** The assignment currently in force; sticky strategies keep partitions where they are. */
  previous?: Assignment;
  /** Relative capacity per member for `weighted` (missing members weigh 1). */
  weights?: Record<MemberId, number>;
  /** Room for a future strategy's input. */
  [key: string]: unknown;
}

/**
 * Decides which member gets which partitions. It must be pure and deterministic: the same members, partitions and
 * context in any order give the same assignment, because the leader computes it and every member follows it.
 */
export type Strategy = (
  members: readonly MemberId[],
  partitions: readonly PartitionInput[],
  context?: StrategyContext,
) => Assignment;
