import { KAFKA_ERROR_CODES, ListOffsetsTimestamp } from '@kiel/protocol';
import { KielError, invalidConfig } from '../errors';
import { listOffset } from '../fetch/fetcher';
import { BaseConsumer, type ConsumerEvents } from './base';
import type { BaseConsumerOptions } from './options';

/** Where a SingleConsumer starts: `'beginning'`, `'end'` (default), a `Date`, or a timestamp in ms. */
export type StartPosition = 'beginning' | 'end' | Date | number;

/** Options of a {@link SingleConsumer}. */
export interface SingleConsumerOptions<V> extends BaseConsumerOptions<V> {
  /** Topics to read from the start; `consume(topic)` also adds topics on the fly. */
  readonly topics?: readonly string[];
  /** Where to start each partition. Default `'end'`, as kiel's SingleConsumer. */
  readonly from?: StartPosition;
  /** How long to wait for a topic that does not exist yet before failing with ERR_UNKNOWN_TOPIC, ms. Default 10 000. */
  readonly topicWaitTimeout?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Reads every partition of its topics, independent of any group, starting at the beginning, the end, or a point in
 * time (through ListOffsets). It notices partitions added to its topics and reads them from their beginning.
 *
 * @example
 * const consumer = new SingleConsumer({ brokers: ['127.0.0.1:9092'], topics: ['events'], from: 'beginning' });
 * await consumer.run({ eachMessage: async (m) => console.log(m.partition, m.offset, m.value) });
 */
export class SingleConsumer<V = unknown> extends BaseConsumer<V, ConsumerEvents> {
  private readonly topics = new Set<string>();
  private readonly from: StartPosition;
  private readonly topicWaitTimeout: number;
  private readonly partitionCounts = new Map<string, number>();
  private metadataTimer: NodeJS.Timeout | undefined;

  constructor(options: SingleConsumerOptions<V>) {
    super(options);
    const from = options.from ?? 'end';
    if (!(
      from === 'beginning' ||
      from === 'end' ||
      (from instanceof Date && !Number.isNaN(from.getTime())) ||
      (typeof from === 'number' && Number.isInteger(from) && from >= 0)
    )) {
      throw invalidConfig('from', "expected 'beginning', 'end', a valid Date or a non-negative timestamp in ms");
    }
    this.from = from;
    const wait = options.topicWaitTimeout ?? 10_000;
    if (!Number.isInteger(wait) || wait < 0)
      throw invalidConfig('topicWaitTimeout', 'expected a non-negative integer (ms)');
    this.topicWaitTimeout = wait;
    if (options.topics !== undefined) {
      if (!Array.isArray(options.topics) || options.topics.some((t) => typeof t !== 'string' || t === '')) {
        throw invalidConfig('topics', 'expected an array of non-empty topic names');
      }
      for (const t of options.topics) this.topics.add(t);
    }
  }

  /** Adds topics to read (from the configured start position). */
  async subscribe(topics: readonly string[]): Promise<void> {
    await this.connect();
    await this.addTopics(topics.filter((t) => !this.partitionCounts.has(t)));
  }

  protected async onConnect(): Promise<void> {
    await this.addTopics([...this.topics]);
    this.cluster.on('metadata', () => void this.noticeNewPartitions());
    this.metadataTimer = setInterval(
      () => void this.cluster.refreshMetadata().catch(() => undefined),
      this.options.metadataMaxAge,
    );
    this.metadataTimer.unref();
  }

  protected override async onConsume(topic: string): Promise<void> {
    if (!this.partitionCounts.has(topic)) await this.addTopics([topic]);
  }

  protected override async onClose(): Promise<void> {
    if (this.metadataTimer) clearInterval(this.metadataTimer);
  }

  private async addTopics(topics: readonly string[]): Promise<void> {
    if (topics.length === 0) return;
    for (const t of topics) this.topics.add(t);
    await this.cluster.track(topics);
    const deadline = performance.now() + this.topicWaitTimeout;
    for (const topic of topics) {
      let partitions = this.cluster.partitions(topic);
      while (!partitions || partitions.some((p) => p === undefined || p.leader < 0)) {
        if (performance.now() >= deadline) {
          throw new KielError(
            'ERR_UNKNOWN_TOPIC',
            partitions
              ? `topic ${topic} has partitions without a leader`
              : `topic ${topic} does not exist (waited ${this.topicWaitTimeout} ms)`,
            {
              location: topic,
              kafkaError: 'UNKNOWN_TOPIC_OR_PARTITION',
              errorCode: KAFKA_ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION,
            },
          );
        }
        await sleep(200);
        await this.cluster.refreshMetadata();
        partitions = this.cluster.partitions(topic);
      }
      const starts = await Promise.all(partitions.map((p) => this.startOffset(topic, p.partition)));
      starts.forEach((offset, partition) => this.startFetching(topic, partition, offset));
      this.partitionCounts.set(topic, partitions.length);
    }
  }

  private async startOffset(topic: string, partition: number): Promise<number> {
    const from = this.from;
    const timestamp =
      from === 'beginning'
        ? ListOffsetsTimestamp.EARLIEST
        : from === 'end'
          ? ListOffsetsTimestamp.LATEST
          : from instanceof Date
            ? from.getTime()
            : from;
    return listOffset(this.cluster, topic, partition, timestamp, this.options.isolationLevel);
  }

  private async noticeNewPartitions(): Promise<void> {
    for (const [topic, known] of this.partitionCounts) {
      const partitions = this.cluster.partitions(topic);
      if (!partitions || partitions.length <= known) continue;
      this.partitionCounts.set(topic, partitions.length);
      // Partitions added after we started hold only new data: read them from their beginning.
      for (let p = known; p < partitions.length; p++) this.startFetching(topic, p, ListOffsetsTimestamp.EARLIEST);
    }
  }
}
