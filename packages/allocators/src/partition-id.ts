import { AllocationError } from './errors';
import type { PartitionId, PartitionInput, TopicPartition } from './types';

/** Kafka's own limits (`org.apache.kafka.common.internals.Topic`): legal characters and at most 249 of them. */
const LEGAL_TOPIC = /^[A-Za-z0-9._-]{1,249}$/;
/** Partition numbers are int32 on the wire. */
const MAX_PARTITION = 2147483647;

/** True when `topic` is a name Kafka would accept. "." and ".." are reserved. */
export function isLegalTopic(topic: unknown): topic is string {
  return typeof topic === 'string' && LEGAL_TOPIC.test(topic) && topic !== '.' && topic !== '..';
}

/** True when `partition` is an int32 partition number Kafka could have. */
export function isLegalPartition(partition: unknown): partition is number {
  return typeof partition === 'number' && Number.isInteger(partition) && partition >= 0 && partition <= MAX_PARTITION;
}

/**
 * Reads the digits of a partition number in canonical decimal form ("7", not "07" or "+7"), so that one partition
 * has exactly one id. Reads from `start` to the end; returns -1 when that is not a partition number.
 */
export function parsePartitionNumber(text: string, start = 0): number {
  const length = text.length - start;
  if (length <= 0 || length > 10 || (length > 1 && text.charCodeAt(start) === 48)) return -1;
  let value = 0;
  for (let i = start; i < text.length; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value <= MAX_PARTITION ? value : -1;
}

/** A readable rendering of any partition input, for error messages and error fields. */
export function describePartition(input: unknown): string {
  if (typeof input === 'string') return input;
  if (input !== null && typeof input === 'object') {
    const { topic, partition } = input as Partial<TopicPartition>;
    return `${String(topic)}:${String(partition)}`;
  }
  return String(input);
}

function invalid(input: unknown): AllocationError {
  return new AllocationError(
    'ERR_INVALID_PARTITION_ID',
    `Invalid partition ${JSON.stringify(describePartition(input))}: expected "topic:partition" with a legal Kafka ` +
      'topic name and a partition number in 0..2147483647 written in plain decimal',
    { partition: describePartition(input), item: input },
  );
}

/**
 * Splits `"topic:partition"` into its parts. Kafka topic names cannot contain ":", so the id splits at its only
 * colon.
 *
 * @throws {AllocationError} `ERR_INVALID_PARTITION_ID` when the id is malformed.
 * @example parsePartitionId('orders:7') // { topic: 'orders', partition: 7 }
 */
export function parsePartitionId(id: PartitionId): TopicPartition {
  if (typeof id !== 'string') throw invalid(id);
  const colon = id.indexOf(':');
  const topic = id.slice(0, colon);
  const partition = colon < 0 ? -1 : parsePartitionNumber(id.slice(colon + 1));
  if (partition < 0 || !isLegalTopic(topic)) throw invalid(id);
  return { topic, partition };
}

/**
 * Formats a partition as its wire id, checking it on the way.
 *
 * @throws {AllocationError} `ERR_INVALID_PARTITION_ID` when the topic or partition number is not legal.
 * @example formatPartitionId({ topic: 'orders', partition: 7 }) // 'orders:7'
 */
export function formatPartitionId(partition: PartitionInput): PartitionId {
  if (typeof partition === 'string') {
    parsePartitionId(partition);
    return partition;
  }
  if (partition === null || typeof partition !== 'object') throw invalid(partition);
  if (!isLegalTopic(partition.topic) || !isLegalPartition(partition.partition)) throw invalid(partition);
  return `${partition.topic}:${partition.partition}`;
}
