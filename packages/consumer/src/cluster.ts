import { EventEmitter } from 'node:events';
import { CoordinatorKeyType, KAFKA_ERROR_CODES, type ApiName, type RequestOf, type ResponseOf } from '@kiel/protocol';
import { KielError, invalidConfig, isKielError } from './errors';
import { Broker, kafkaError, type BrokerConnectionOptions } from './net/broker';

/** How retriable failures are retried: exponential backoff with jitter, bounded in count. */
export interface RetryOptions {
  /** Attempts after the first. Default 8. */
  readonly retries?: number;
  /** First backoff in milliseconds. Default 100. */
  readonly initialBackoff?: number;
  /** Backoff ceiling in milliseconds. Default 2 000. */
  readonly maxBackoff?: number;
}

/** Options of a {@link Cluster}. */
export interface ClusterOptions extends BrokerConnectionOptions {
  /** Bootstrap brokers, `host:port`. Any one that answers is enough. */
  readonly brokers: readonly string[];
  readonly retry?: RetryOptions;
  /** Metadata older than this is refreshed, to notice new partitions and topics. Default 30 000 ms. */
  readonly metadataMaxAge?: number;
}

/** A partition's place in the cluster. */
export interface PartitionMetadata {
  readonly partition: number;
  /** Node id of the leader, or -1 while there is none. */
  readonly leader: number;
  readonly leaderEpoch: number;
}

/** Events of a {@link Cluster}. */
export interface ClusterEvents {
  /** Metadata was refreshed. Listeners compare partition counts to notice growth. */
  metadata: [topics: ReadonlyMap<string, readonly PartitionMetadata[]>];
}

/** Errors that heal by refreshing metadata and trying again. */
const STALE_METADATA = new Set<number>([
  KAFKA_ERROR_CODES.NOT_LEADER_OR_FOLLOWER,
  KAFKA_ERROR_CODES.LEADER_NOT_AVAILABLE,
  KAFKA_ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION,
  KAFKA_ERROR_CODES.FENCED_LEADER_EPOCH,
  KAFKA_ERROR_CODES.UNKNOWN_LEADER_EPOCH,
  KAFKA_ERROR_CODES.NOT_COORDINATOR,
  KAFKA_ERROR_CODES.COORDINATOR_NOT_AVAILABLE,
  KAFKA_ERROR_CODES.REPLICA_NOT_AVAILABLE,
  KAFKA_ERROR_CODES.KAFKA_STORAGE_ERROR,
]);

/** Parses `host:port` (IPv6 as `[::1]:9092`). */
export function parseHostPort(value: string, option: string): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(value.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || !match[1] || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalidConfig(option, `${JSON.stringify(value)} is not host:port`);
  }
  return { host: match[1], port };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The fetch connections kept per broker beside its control connection (see {@link Cluster.fetchBroker}). */
export type FetchLane = 'session' | 'eager';
const FETCH_LANES: readonly FetchLane[] = ['session', 'eager'];

/** How long a metadata request may go unanswered before the next broker is asked as well, ms. */
const METADATA_HEDGE_MS = 1_000;

/**
 * The client's view of a Kafka cluster: bootstrap, metadata (topics, partitions, leaders), lazily opened connections
 * per broker (one for requests, two for fetches), coordinators, and retry with healing for retriable errors.
 */
export class Cluster extends EventEmitter<ClusterEvents> {
  private readonly options: ClusterOptions;
  private readonly bootstrap: ReadonlyArray<{ host: string; port: number }>;
  private readonly brokers = new Map<number, Broker>();
  /** Fetch connections, by `${nodeId}/${lane}` (see {@link Cluster.fetchBroker}). */
  private readonly fetchBrokers = new Map<string, Broker>();
  private readonly topics = new Map<string, PartitionMetadata[]>();
  /** Topic ids from metadata (v10+), to tell a re-created topic from a lagging broker's answer. */
  private readonly topicIds = new Map<string, string>();
  /** Tracked topics the last metadata answer called unknown. */
  private readonly unknown = new Set<string>();
  private readonly tracked = new Set<string>();
  private refreshing: Promise<void> | undefined;
  private refreshedAt = 0;
  private closed = false;
  /** The cluster id from metadata, once known. */
  clusterId: string | null = null;

  constructor(options: ClusterOptions) {
    super();
    if (!Array.isArray(options.brokers)) throw invalidConfig('brokers', 'expected an array of host:port strings');
    if (!options.clientId) throw invalidConfig('clientId', 'must be a non-empty string');
    this.options = options;
    this.bootstrap = options.brokers.map((b) => parseHostPort(String(b), 'brokers'));
  }

  /** Connects to the first bootstrap broker that answers and loads metadata; also again after close(). */
  async connect(): Promise<void> {
    if (this.bootstrap.length === 0) {
      throw new KielError('ERR_NO_BROKERS', 'no brokers given: pass at least one host:port in `brokers`');
    }
    this.closed = false;
    await this.refreshMetadata();
  }

  /** Closes every broker connection. Idempotent. */
  close(): void {
    this.closed = true;
    for (const broker of this.brokers.values()) broker.close();
    this.brokers.clear();
    for (const broker of this.fetchBrokers.values()) broker.close();
    this.fetchBrokers.clear();
  }

  /** Adds topics to the set whose metadata is kept, and loads them. */
  async track(topics: Iterable<string>): Promise<void> {
    let added = false;
    for (const topic of topics) {
      if (!this.tracked.has(topic)) {
        this.tracked.add(topic);
        added = true;
      }
    }
    if (added) await this.refreshMetadata();
  }

  /** The partitions of a tracked topic, or undefined if it is not (yet) known. */
  /** Whether the last metadata answer said `topic` does not exist (UNKNOWN_TOPIC_OR_PARTITION): never, or deleted. */
  isUnknown(topic: string): boolean {
    return this.unknown.has(topic);
  }

  partitions(topic: string): readonly PartitionMetadata[] | undefined {
    return this.topics.get(topic);
  }

  /** Node id of the leader of a partition, or -1 when unknown. */
  leaderOf(topic: string, partition: number): number {
    return this.topics.get(topic)?.[partition]?.leader ?? -1;
  }

  /** The leader epoch of a partition as metadata last told it (KIP-320), or -1 when unknown. */
  leaderEpochOf(topic: string, partition: number): number {
    return this.topics.get(topic)?.[partition]?.leaderEpoch ?? -1;
  }

  /**
   * Takes a leader that a broker named in an answer (Fetch's `currentLeader` after NOT_LEADER_OR_FOLLOWER or
   * FENCED_LEADER_EPOCH) without waiting for a metadata round trip: applied only when `leaderEpoch` is newer than
   * the one known and the broker is in the metadata. Returns whether it was applied.
   */
  updateLeader(topic: string, partition: number, leaderId: number, leaderEpoch: number): boolean {
    const partitions = this.topics.get(topic);
    const known = partitions?.[partition];
    if (!partitions || !known || leaderId < 0 || leaderEpoch <= known.leaderEpoch || !this.brokers.has(leaderId)) {
      return false;
    }
    partitions[partition] = { partition, leader: leaderId, leaderEpoch };
    return true;
  }

  /** True when metadata is older than `metadataMaxAge`. */
  get metadataStale(): boolean {
    return performance.now() - this.refreshedAt > (this.options.metadataMaxAge ?? 30_000);
  }

  /** The connection to a broker by node id (opened on first use). */
  broker(nodeId: number): Broker {
    const broker = this.brokers.get(nodeId);
    if (!broker) {
      throw new KielError('ERR_CONNECTION', `broker ${nodeId} is not in the cluster metadata`, { retriable: true });
    }
    return broker;
  }

  /**
   * A connection to broker `nodeId` for fetches alone, one per lane (`session`: the session fetch; `eager`: the
   * fetches beside it), opened on first use, to the address metadata gives. A broker reads one request per connection
   * at a time and answers in order, so a fetch parked in a long poll holds up whatever follows it on its connection
   * for up to `maxWaitTime`: commits, offset reads and ListOffsets on the connection of {@link Cluster.broker}, and an
   * eager fetch for a newly assigned partition behind the session fetch.
   */
  fetchBroker(nodeId: number, lane: FetchLane): Broker {
    const control = this.broker(nodeId);
    const key = `${nodeId}/${lane}`;
    const known = this.fetchBrokers.get(key);
    if (known && known.host === control.host && known.port === control.port) return known;
    known?.close();
    const broker = new Broker(nodeId, control.host, control.port, this.options);
    this.fetchBrokers.set(key, broker);
    return broker;
  }

  /** Closes and forgets the fetch connections of a node (it left the cluster or moved). */
  private dropFetchBrokers(nodeId: number): void {
    for (const lane of FETCH_LANES) {
      const key = `${nodeId}/${lane}`;
      this.fetchBrokers.get(key)?.close();
      this.fetchBrokers.delete(key);
    }
  }

  /** Sends a request to a broker by node id. */
  send<A extends ApiName>(
    nodeId: number,
    api: A,
    request: RequestOf<A>,
    options?: { timeout?: number },
  ): Promise<ResponseOf<A>> {
    return this.broker(nodeId).send(api, request, options);
  }

  /**
   * Refreshes metadata for the tracked topics (concurrent callers share one request). Tries connected brokers
   * first, then the others, then the bootstrap list; fails with ERR_NO_BROKERS when none answers.
   */
  refreshMetadata(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.loadMetadata().finally(() => {
        this.refreshing = undefined;
      });
    }
    return this.refreshing;
  }

  /**
   * Runs `operation`, retrying retriable failures with backoff. Stale-metadata errors and lost connections
   * refresh metadata before the next attempt.
   */
  async retry<T>(context: string, operation: () => Promise<T>): Promise<T> {
    const retries = this.options.retry?.retries ?? 8;
    const initial = this.options.retry?.initialBackoff ?? 100;
    const max = this.options.retry?.maxBackoff ?? 2_000;
    for (let attempt = 0; ; attempt++) {
      try {
        return await operation();
      } catch (err) {
        if (this.closed) throw new KielError('ERR_CLOSED', `${context}: the client was closed`, { cause: err });
        if (!isKielError(err) || !err.retriable || attempt >= retries) throw err;
        const backoff = Math.min(max, initial * 2 ** attempt) * (0.8 + Math.random() * 0.4);
        await sleep(backoff);
        if (needsRefresh(err)) await this.refreshMetadata().catch(() => undefined);
      }
    }
  }

  /**
   * Finds the coordinator of a consumer group with FindCoordinator, asking every known broker in turn until one
   * answers (retrying while the coordinator is not available yet).
   */
  findCoordinator(group: string): Promise<Broker> {
    return this.retry(`FindCoordinator ${group}`, async () => {
      const candidates = this.orderedBrokers();
      let lastError: unknown;
      for (const broker of candidates) {
        try {
          const response = await broker.send('FindCoordinator', {
            key: group,
            keyType: CoordinatorKeyType.GROUP,
            coordinatorKeys: [group],
          });
          const answer = response.coordinators?.[0] ?? response;
          if (answer.errorCode !== KAFKA_ERROR_CODES.NONE) {
            throw kafkaError(
              answer.errorCode,
              `FindCoordinator for group ${group}`,
              broker.address,
              answer.errorMessage,
            );
          }
          return this.brokerAt(answer.nodeId, answer.host, answer.port);
        } catch (err) {
          lastError = err;
          if (!isKielError(err) || !err.retriable) throw err;
        }
      }
      throw (
        lastError ??
        new KielError('ERR_NO_BROKERS', `FindCoordinator for group ${group}: no broker answered`, { retriable: true })
      );
    });
  }

  /** The broker for a node id, registering its address if metadata has not listed it yet. */
  brokerAt(nodeId: number, host: string, port: number): Broker {
    const known = this.brokers.get(nodeId);
    if (known && known.host === host && known.port === port) return known;
    known?.close();
    if (known) this.dropFetchBrokers(nodeId);
    const broker = new Broker(nodeId, host, port, this.options);
    this.brokers.set(nodeId, broker);
    return broker;
  }

  private orderedBrokers(): Broker[] {
    const all = [...this.brokers.values()];
    return [...all.filter((b) => b.connected), ...all.filter((b) => !b.connected)];
  }

  /**
   * Asks candidates for metadata, hedged: the next candidate is asked when the previous one failed or has not
   * answered within {@link METADATA_HEDGE_MS} (a frozen broker keeps its connection open and never answers), and the
   * first answer wins. Connected brokers first, then the others, then the bootstrap list.
   */
  private loadMetadata(): Promise<void> {
    const candidates: Broker[] = this.orderedBrokers();
    for (const { host, port } of this.bootstrap) {
      if (!candidates.some((b) => b.host === host && b.port === port))
        candidates.push(new Broker(-1, host, port, this.options));
    }
    const request = { topics: [...this.tracked].map((name) => ({ name })), allowAutoTopicCreation: false };
    return new Promise<void>((resolve, reject) => {
      const failures: string[] = [];
      let next = 0;
      let pending = 0;
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      const finish = (err?: unknown) => {
        done = true;
        clearTimeout(timer);
        if (err === undefined) resolve();
        else reject(err);
      };
      const launch = () => {
        clearTimeout(timer);
        if (done) return;
        if (this.closed) return finish(new KielError('ERR_CLOSED', 'the client was closed'));
        if (next >= candidates.length) {
          if (pending === 0) {
            finish(
              new KielError('ERR_NO_BROKERS', `no broker answered a metadata request (${failures.join('; ')})`, {
                retriable: true,
              }),
            );
          }
          return;
        }
        const broker = candidates[next++]!;
        pending++;
        timer = setTimeout(launch, METADATA_HEDGE_MS);
        broker.send('Metadata', request).then(
          (response) => {
            pending--;
            if (broker.nodeId === -1) broker.close();
            if (done) return;
            try {
              this.apply(response);
              finish();
            } catch (err) {
              finish(err);
            }
          },
          (err: unknown) => {
            pending--;
            if (broker.nodeId === -1) broker.close();
            if (done) return;
            if (isKielError(err) && !err.retriable && err.code !== 'ERR_CONNECTION') return finish(err);
            failures.push(`${broker.address}: ${(err as Error).message}`);
            launch();
          },
        );
      };
      launch();
    });
  }

  private apply(response: ResponseOf<'Metadata'>): void {
    this.clusterId = response.clusterId;
    const seen = new Set<number>();
    for (const b of response.brokers) {
      seen.add(b.nodeId);
      this.brokerAt(b.nodeId, b.host, b.port);
    }
    for (const [nodeId, broker] of this.brokers) {
      if (!seen.has(nodeId)) {
        broker.close();
        this.brokers.delete(nodeId);
        this.dropFetchBrokers(nodeId);
      }
    }
    for (const topic of response.topics) {
      if (topic.name === null) continue;
      if (topic.errorCode !== KAFKA_ERROR_CODES.NONE) {
        // Unknown topics (and ones still being created) stay absent; callers wait or report.
        this.topics.delete(topic.name);
        if (topic.errorCode === KAFKA_ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION) this.unknown.add(topic.name);
        continue;
      }
      this.unknown.delete(topic.name);
      // A topic deleted and created again under the same name starts its epochs over: compare only within one
      // topic id (all zeros before Metadata v10, where a re-creation is not told apart).
      const sameTopic = this.topicIds.get(topic.name) === topic.topicId;
      this.topicIds.set(topic.name, topic.topicId);
      const known = sameTopic ? this.topics.get(topic.name) : undefined;
      const partitions: PartitionMetadata[] = [];
      for (const p of topic.partitions) {
        const before = known?.[p.partitionIndex];
        // A broker whose metadata lags can answer with an older leader epoch than one already seen (KIP-320): keep
        // the newer view of that partition rather than go back to a former leader.
        if (before && p.leaderEpoch >= 0 && p.leaderEpoch < before.leaderEpoch) {
          partitions[p.partitionIndex] = before;
          continue;
        }
        partitions[p.partitionIndex] = {
          partition: p.partitionIndex,
          leader: p.errorCode === KAFKA_ERROR_CODES.LEADER_NOT_AVAILABLE ? -1 : p.leaderId,
          leaderEpoch: p.leaderEpoch,
        };
      }
      this.topics.set(topic.name, partitions);
    }
    this.refreshedAt = performance.now();
    this.emit('metadata', this.topics);
  }
}

function needsRefresh(err: KielError): boolean {
  if (err.code === 'ERR_CONNECTION' || err.code === 'ERR_REQUEST_TIMEOUT' || err.code === 'ERR_NO_BROKERS') return true;
  return err.code === 'ERR_KAFKA' && err.errorCode !== undefined && STALE_METADATA.has(err.errorCode);
}
