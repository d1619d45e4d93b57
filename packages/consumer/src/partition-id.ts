/**
 * Partition ids (`"topic:partition"`, as `@kiel/allocators` defines them) inside the consumer: one place that makes
 * them and one that splits them.
 */
import { parsePartitionId } from '@kiel/allocators';

/**
 * The id of a partition the consumer already knows (from metadata, a record or a fetch): formatted without
 * `formatPartitionId`'s checks, since it runs for every batch.
 */
export const partitionId = (topic: string, partition: number): string => `${topic}:${partition}`;

/** Splits an id into `{ topic, partition }`; throws `ERR_INVALID_PARTITION_ID` on a malformed one. */
export { parsePartitionId };
