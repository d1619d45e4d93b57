import { KAFKA_ERROR_CODES, SimpleCommit } from '@kiel/protocol';
import type { Cluster } from '../cluster';
import { KielError } from '../errors';
import { kafkaError, type Broker } from '../net/broker';
import { partitionId } from '../partition-id';

/** A partition and an offset. */
export interface PartitionOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
}

/** Codes that mean the cached coordinator is wrong or gone: find it again. */
const COORDINATOR_MOVED = new Set<number>([
  KAFKA_ERROR_CODES.NOT_COORDINATOR,
  KAFKA_ERROR_CODES.COORDINATOR_NOT_AVAILABLE,
]);

/** Codes a group with native (Kafka-protocol) members answers to a simple-consumer commit. */
const NATIVE_GROUP = new Set<number>([
  KAFKA_ERROR_CODES.UNKNOWN_MEMBER_ID,
  KAFKA_ERROR_CODES.ILLEGAL_GENERATION,
  KAFKA_ERROR_CODES.STALE_MEMBER_EPOCH,
  KAFKA_ERROR_CODES.FENCED_INSTANCE_ID,
  KAFKA_ERROR_CODES.REBALANCE_IN_PROGRESS,
]);

function groupByTopic<T extends { topic: string }>(items: readonly T[]): Map<string, T[]> {
  const byTopic = new Map<string, T[]>();
  for (const item of items) {
    const list = byTopic.get(item.topic);
    if (list) list.push(item);
    else byTopic.set(item.topic, [item]);
  }
  return byTopic;
}

/**
 * Committed offsets of a group, kept in Kafka by its group coordinator. Uses the simple-consumer form of
 * OffsetCommit (generation -1, empty member id), which Kafka accepts while the group has no native members.
 */
export class OffsetStore {
  private coordinator: Broker | undefined;

  constructor(
    private readonly cluster: Cluster,
    private readonly group: string,
    /** Who commits, recorded in the commit metadata. */
    private readonly memberId: string,
  ) {}

  /** Finds the group coordinator (FindCoordinator, every broker in turn), once; later calls reuse it. */
  async findCoordinator(): Promise<Broker> {
    this.coordinator ??= await this.cluster.findCoordinator(this.group);
    return this.coordinator;
  }

  /**
   * The committed offsets of `partitions`, keyed `topic:partition`; -1 where nothing was committed. Retries while
   * the coordinator is loading offsets (COORDINATOR_LOAD_IN_PROGRESS) or has moved.
   */
  async fetch(partitions: ReadonlyArray<{ topic: string; partition: number }>): Promise<Map<string, number>> {
    const result = new Map<string, number>();
    if (partitions.length === 0) return result;
    const topics = [...groupByTopic(partitions)].map(([name, list]) => ({
      name,
      partitionIndexes: list.map((p) => p.partition),
    }));
    return this.cluster.retry(`OffsetFetch for group ${this.group}`, async () => {
      const coordinator = await this.findCoordinator();
      const response = await coordinator.send('OffsetFetch', { groupId: this.group, topics, requireStable: true });
      this.check(response.errorCode, 'OffsetFetch', coordinator);
      for (const topic of response.topics) {
        for (const p of topic.partitions) {
          this.check(p.errorCode, `OffsetFetch ${topic.name}-${p.partitionIndex}`, coordinator);
          result.set(partitionId(topic.name, p.partitionIndex), p.committedOffset);
        }
      }
      return result;
    });
  }

  /**
   * Commits offsets (each the next offset to read). `metadata` defaults to `committed by <member>`; if the broker
   * finds it too large, the commit is retried with empty metadata, as kiel does. Each partition counts on its own:
   * a retry sends only what is not committed yet, and `keep` is asked again before every attempt, so a retry drops
   * what it refuses (a partition no longer owned) and a late retry never moves a committed offset under another
   * owner. A partition whose topic no longer exists (UNKNOWN_TOPIC_OR_PARTITION) is not retried: it is returned in
   * `unknown`, and the others are committed.
   */
  async commit(
    offsets: readonly PartitionOffset[],
    options: { metadata?: string | undefined; keep?: (offset: PartitionOffset) => boolean } = {},
  ): Promise<{ committed: PartitionOffset[]; unknown: PartitionOffset[] }> {
    const committed: PartitionOffset[] = [];
    const unknown: PartitionOffset[] = [];
    if (offsets.length === 0) return { committed, unknown };
    let text = options.metadata ?? `committed by ${this.memberId}`;
    const keep = options.keep;
    let pending = [...offsets];
    await this.cluster.retry(`OffsetCommit for group ${this.group}`, async () => {
      if (keep) pending = pending.filter(keep);
      if (pending.length === 0) return;
      const coordinator = await this.findCoordinator();
      // Finding the coordinator may have taken a while: ask again, as close to the send as it gets.
      if (keep) pending = pending.filter(keep);
      if (pending.length === 0) return;
      const sent = new Map(pending.map((o) => [partitionId(o.topic, o.partition), o]));
      const response = await coordinator.send('OffsetCommit', {
        groupId: this.group,
        generationIdOrMemberEpoch: SimpleCommit.GENERATION_ID,
        memberId: SimpleCommit.MEMBER_ID,
        groupInstanceId: null,
        topics: [...groupByTopic(pending)].map(([name, list]) => ({
          name,
          partitions: list.map((p) => ({
            partitionIndex: p.partition,
            committedOffset: p.offset,
            committedMetadata: text,
          })),
        })),
      });
      let failure: { errorCode: number; context: string } | undefined;
      for (const topic of response.topics) {
        for (const p of topic.partitions) {
          const id = partitionId(topic.name, p.partitionIndex);
          const offset = sent.get(id);
          if (!offset) continue;
          if (p.errorCode === KAFKA_ERROR_CODES.NONE) {
            committed.push(offset);
            sent.delete(id);
          } else if (p.errorCode === KAFKA_ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION) {
            unknown.push(offset);
            sent.delete(id);
          } else if (p.errorCode === KAFKA_ERROR_CODES.OFFSET_METADATA_TOO_LARGE && text !== '') {
            text = '';
            failure ??= { errorCode: p.errorCode, context: 'metadata too large, retrying with none' };
          } else {
            failure ??= { errorCode: p.errorCode, context: `OffsetCommit ${topic.name}-${p.partitionIndex}` };
          }
        }
      }
      pending = [...sent.values()];
      if (!failure) return;
      if (failure.errorCode === KAFKA_ERROR_CODES.OFFSET_METADATA_TOO_LARGE) {
        throw new KielError('ERR_KAFKA', `OffsetCommit: ${failure.context}`, {
          retriable: true,
          kafkaError: 'OFFSET_METADATA_TOO_LARGE',
          errorCode: failure.errorCode,
        });
      }
      this.check(failure.errorCode, failure.context, coordinator);
    });
    return { committed, unknown };
  }

  /** Turns an error code into the right exception (or nothing for NONE). */
  private check(errorCode: number, context: string, coordinator: Broker): void {
    if (errorCode === KAFKA_ERROR_CODES.NONE) return;
    if (COORDINATOR_MOVED.has(errorCode)) this.coordinator = undefined;
    if (NATIVE_GROUP.has(errorCode)) {
      throw new KielError(
        'ERR_GROUP_ID_CONFLICT',
        `${context} for group ${this.group} was refused (${kafkaError(errorCode, '', coordinator.address).kafkaError}): a native Kafka ` +
          `consumer group is using the same group id. kiel commits as a simple consumer, which Kafka only accepts while ` +
          `the group has no native members: give this GroupedConsumer a group id no Kafka consumer uses.`,
        { errorCode, location: this.group },
      );
    }
    throw kafkaError(errorCode, `${context} for group ${this.group}`, coordinator.address);
  }
}
