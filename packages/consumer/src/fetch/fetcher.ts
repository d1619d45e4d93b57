import { EventEmitter } from 'node:events';
import {
  FetchSession,
  IsolationLevel,
  KAFKA_ERROR_CODES,
  ListOffsetsTimestamp,
  decodeRecords,
  isKafkaProtocolError,
  scanRecords,
  type AbortedTransaction,
  type CodecRegistry,
  type KafkaRecord,
  type ResponseOf,
} from '@kiel/protocol';
import type { Cluster } from '../cluster';
import { KielError, isKielError } from '../errors';
import { kafkaError } from '../net/broker';
import { fetchChannel, type FetchTraceResult, type TraceOrigin } from '../diagnostics';
import { FetchSessionState, type WantedPartition } from './session';

/** Where to start when a partition has no valid position. */
export type OffsetReset = 'earliest' | 'latest' | 'error';

/** Settings of the fetch engine. */
export interface FetcherOptions {
  /** Longest time the broker may hold a fetch waiting for `minBytes`, in ms. */
  readonly maxWaitTime: number;
  readonly minBytes: number;
  /** Response size limit per fetch request. */
  readonly maxBytes: number;
  /** Per-partition size limit per fetch request. */
  readonly maxPartitionBytes: number;
  readonly isolationLevel: 'read_uncommitted' | 'read_committed';
  /** Fetched bytes that may wait for the application before fetching pauses. */
  readonly maxBufferedBytes: number;
  readonly verifyCrc: boolean;
  readonly offsetReset: OffsetReset;
  readonly codecs?: CodecRegistry;
  /** Who fetches, for the `kiel:consumer:fetch` tracing channel. */
  readonly origin?: TraceOrigin;
}

/**
 * A run of records of one partition, fetched and waiting for the application. Its bytes are kept raw and decoded by
 * {@link Fetcher.recordsOf} when the application takes it, so that records are made just before they are handled
 * (and die young) rather than when the answer arrives.
 */
export interface FetchedBatch {
  readonly topic: string;
  readonly partition: number;
  readonly highWatermark: number;
  readonly lastStableOffset: number;
  /** The fetch position this run was fetched at: nothing before it is in it. */
  readonly fromOffset: number;
  /**
   * The partition position once these records are handled: one past the last offset read. If its bytes turn out
   * not to decode, it becomes {@link fromOffset} (nothing of it was handled).
   */
  nextOffset: number;
  /** Raw bytes this batch holds in the fetch buffer (for the memory budget). */
  readonly bytes: number;
  /** Assignment token: a batch whose partition was revoked or re-seeked since it was fetched is stale. */
  readonly token: number;
  /** Bumped per partition when a batch fails to decode: the partition's later batches are stale too. */
  readonly generation: number;
  /** The records bytes (whole batches only), until decoded. */
  raw: Buffer | undefined;
  readonly abortedTransactions: readonly AbortedTransaction[] | null;
  /** The leader epoch the partition's last fetched batch had before this run (restored if it fails to decode). */
  readonly epochBefore: number;
  /** Set by {@link Fetcher.recordsOf}. */
  records: KafkaRecord[] | undefined;
}

/**
 * The log of a partition diverged from what this consumer fetched: after an unclean leader election the new leader
 * lacks records that the old one had served (KIP-320 truncation, found through Fetch v12's `divergingEpoch`).
 * Records from `divergenceOffset` to `position` - 1 were fetched (and maybe handled) but are no longer in the log;
 * what the log holds there now (if anything) was written since.
 */
export interface LogTruncation {
  readonly topic: string;
  readonly partition: number;
  /** The fetch position when the divergence was found: one past the last record fetched. */
  readonly position: number;
  /** The leader epoch of the last batch fetched. */
  readonly lastFetchedEpoch: number;
  /** The largest epoch the leader's log has at or below `lastFetchedEpoch`. */
  readonly divergingEpoch: number;
  /** The first offset at which the leader's log no longer holds what was fetched (the end offset of that epoch). */
  readonly divergenceOffset: number;
  /**
   * What the consumer did: `resumed` (offsetReset earliest or latest) fetches on from `divergenceOffset`, so records
   * the new leader holds from there are delivered; `paused` (offsetReset 'error') pauses the partition until the
   * application seeks.
   */
  readonly action: 'resumed' | 'paused';
}

/** Events of the fetch engine. */
export interface FetcherEvents {
  /** A problem the engine cannot heal; the partition named in it is paused, its data kept. */
  error: [error: KielError];
  /** The partition's log was truncated below the fetch position (see {@link LogTruncation}). */
  truncation: [info: LogTruncation];
  /** A fetch round trip completed. */
  fetch: [stats: { broker: number; partitions: number; records: number; bytes: number; durationMs: number }];
  /** The position of a partition was reset by the `offsetReset` policy. */
  reset: [info: { topic: string; partition: number; from: number; to: number; policy: OffsetReset }];
}

interface PartitionState {
  readonly topic: string;
  readonly partition: number;
  fetchOffset: number;
  maxBytes: number;
  paused: boolean;
  /** Batches handed to the queue and not yet released by the application. */
  queued: number;
  token: number;
  /** A position reset (ListOffsets) is running for it. */
  resetting: boolean;
  /** A fetch covering it is in flight. */
  inFlight: boolean;
  /** From the last fetch answer for it (records or none); -1 before one. */
  highWatermark: number;
  /** Counts the fetches that covered it; an answer to an older one (an abandoned fetch) is stale. */
  fetchSeq: number;
  /** The leader epoch of the last batch fetched (Fetch v12 `lastFetchedEpoch`), -1 when unknown (after a seek). */
  lastFetchedEpoch: number;
  /** See {@link FetchedBatch.generation}. */
  generation: number;
}

/** Per-broker bookkeeping of the fetches in flight. */
interface BrokerFetches {
  /** The session fetch (KIP-227) in flight, if any. */
  session: boolean;
  /** Sessionless fetches in flight for partitions that became fetchable while the session fetch was parked. */
  eager: number;
  failures: number;
  retryTimer: NodeJS.Timeout | undefined;
}

/** Extra sessionless fetches per broker while its session fetch is parked in a long poll. */
const MAX_EAGER_FETCHES = 1;

/**
 * The longest an eager fetch waits for data, ms (less when `maxWaitTime` is less). Partitions that become fetchable
 * while the session fetch is parked (newly assigned ones) are polled at most this far apart until the session fetch
 * comes back and takes them in: an eager fetch parked for the whole `maxWaitTime` on idle partitions would keep the
 * next newly assigned partition waiting behind it (one eager fetch per broker).
 */
const EAGER_MAX_WAIT_MS = 100;

/**
 * A fetch still unanswered this long after `maxWaitTime` is suspect (a frozen broker keeps its sockets open, so
 * nothing fails): metadata is checked, and partitions whose leader moved meanwhile are fetched from the new leader
 * without waiting for the old request to time out. Checked again every {@link STUCK_RECHECK_MS}.
 */
const STUCK_GRACE_MS = 1_000;
const STUCK_RECHECK_MS = 500;

/** Metadata polling interval while a partition has no leader or its leader cannot be reached. */
const HEAL_INTERVAL_MS = 200;

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Errors after which the partition's leader must be looked up again. */
const LEADER_ERRORS = new Set<number>([
  KAFKA_ERROR_CODES.NOT_LEADER_OR_FOLLOWER,
  KAFKA_ERROR_CODES.LEADER_NOT_AVAILABLE,
  KAFKA_ERROR_CODES.UNKNOWN_TOPIC_OR_PARTITION,
  KAFKA_ERROR_CODES.FENCED_LEADER_EPOCH,
  KAFKA_ERROR_CODES.UNKNOWN_LEADER_EPOCH,
  KAFKA_ERROR_CODES.REPLICA_NOT_AVAILABLE,
  KAFKA_ERROR_CODES.KAFKA_STORAGE_ERROR,
  KAFKA_ERROR_CODES.OFFSET_NOT_AVAILABLE,
]);

const SESSION_ERRORS = new Set<number>([
  KAFKA_ERROR_CODES.FETCH_SESSION_ID_NOT_FOUND,
  KAFKA_ERROR_CODES.INVALID_FETCH_SESSION_EPOCH,
  KAFKA_ERROR_CODES.FETCH_SESSION_TOPIC_ID_ERROR,
]);

/**
 * The fetch engine. Per leader broker it keeps one Fetch in flight (in a KIP-227 session) covering every
 * fetchable partition led by that broker, decodes the answer into batches, queues them, and sends the next fetch
 * at once while the application handles the queue (pipelining), as long as the queued bytes stay within
 * `maxBufferedBytes`. A partition that becomes fetchable while that fetch is parked in a long poll (a new
 * assignment, a resume, a drained queue) gets a sessionless fetch of its own right away instead of waiting up to
 * `maxWaitTime`. A partition is in at most one fetch at a time. Positions advance when data is queued, so a lost
 * response is simply fetched again.
 */
export class Fetcher extends EventEmitter<FetcherEvents> {
  private readonly cluster: Cluster;
  private readonly options: FetcherOptions;
  private readonly partitions = new Map<string, PartitionState>();
  private readonly brokers = new Map<number, BrokerFetches>();
  private readonly sessions = new Map<number, FetchSessionState>();
  private queue: FetchedBatch[] = [];
  private bufferedBytes = 0;
  private running = false;
  private nextToken = 1;
  private pumpScheduled = false;
  /** Wakes a `take()` waiting for data. */
  private wakeTaker: (() => void) | undefined;
  /** interrupt() was called: the waiting (or next) take() returns at once. */
  private interrupted = false;

  constructor(cluster: Cluster, options: FetcherOptions) {
    super();
    this.cluster = cluster;
    this.options = options;
  }

  /** Starts fetching assigned partitions. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.wake();
  }

  /**
   * Stops sending fetches. Answers still in flight are queued or dropped as usual (closing the cluster rejects
   * them). Queued batches stay until taken or cleared.
   */
  async stop(): Promise<void> {
    this.running = false;
    for (const b of this.brokers.values()) clearTimeout(b.retryTimer);
    this.wakeTaker?.();
  }

  /**
   * Starts fetching a partition from `offset` (or re-seeks it). Negative offsets mean "reset by policy". Returns the
   * assignment token that the partition's batches carry from now on.
   */
  assign(topic: string, partition: number, offset: number): number {
    const k = tpKey(topic, partition);
    const existing = this.partitions.get(k);
    const state: PartitionState = existing ?? {
      topic,
      partition,
      fetchOffset: offset,
      maxBytes: this.options.maxPartitionBytes,
      paused: false,
      queued: 0,
      token: 0,
      resetting: false,
      inFlight: false,
      highWatermark: -1,
      fetchSeq: 0,
      lastFetchedEpoch: -1,
      generation: 0,
    };
    if (existing) this.dropQueued(existing);
    state.fetchOffset = offset;
    // The epoch of the records before a position we were told to start at is not known.
    state.lastFetchedEpoch = -1;
    state.token = this.nextToken++;
    this.partitions.set(k, state);
    if (offset < 0) void this.resetOffset(state, offset === ListOffsetsTimestamp.LATEST ? 'latest' : 'earliest');
    this.wake();
    return state.token;
  }

  /** Stops fetching a partition at once; its queued batches are dropped and in-flight answers discarded. */
  revoke(topic: string, partition: number): void {
    const state = this.partitions.get(tpKey(topic, partition));
    if (!state) return;
    this.partitions.delete(tpKey(topic, partition));
    this.dropQueued(state);
    state.token = -1;
    this.wake();
  }

  /** Pauses or resumes fetching a partition (its queued data stays). */
  setPaused(topic: string, partition: number, paused: boolean): void {
    const state = this.partitions.get(tpKey(topic, partition));
    if (!state) return;
    state.paused = paused;
    if (!paused) this.wake();
  }

  /** Whether a partition is assigned here. */
  isAssigned(topic: string, partition: number): boolean {
    return this.partitions.has(tpKey(topic, partition));
  }

  /** Assigned partitions, with the offset fetched next and the high watermark of the last answer (-1 before one). */
  assigned(): Array<{ topic: string; partition: number; paused: boolean; fetchOffset: number; highWatermark: number }> {
    return [...this.partitions.values()].map((s) => ({
      topic: s.topic,
      partition: s.partition,
      paused: s.paused,
      fetchOffset: s.fetchOffset,
      highWatermark: s.highWatermark,
    }));
  }

  /** Whether a batch still belongs to the current assignment of its partition. */
  isCurrent(batch: FetchedBatch): boolean {
    const state = this.partitions.get(tpKey(batch.topic, batch.partition));
    return state !== undefined && state.token === batch.token && state.generation === batch.generation;
  }

  /**
   * The records of a batch, decoded on the first call (CRC checked, decompressed, aborted transactions dropped).
   * Empty when none is left to deliver (compacted away), or when its bytes do not decode: then the partition's
   * fetch position goes back to the batch's first offset and the partition is paused (nothing is skipped), its
   * later batches are dropped or become stale, the batch's `nextOffset` becomes its `fromOffset`, and an
   * ERR_PROTOCOL error naming the partition and offset is emitted, as when decoding failed on arrival before.
   */
  recordsOf(batch: FetchedBatch): KafkaRecord[] {
    if (batch.records !== undefined) return batch.records;
    const raw = batch.raw!;
    batch.raw = undefined;
    let result;
    try {
      result = decodeRecords(raw, {
        verifyCrc: this.options.verifyCrc,
        isolationLevel: this.options.isolationLevel,
        abortedTransactions: batch.abortedTransactions,
        fromOffset: batch.fromOffset,
        ...(this.options.codecs ? { codecs: this.options.codecs } : {}),
      });
    } catch (err) {
      batch.records = [];
      batch.nextOffset = batch.fromOffset;
      const state = this.partitions.get(tpKey(batch.topic, batch.partition));
      if (state && state.token === batch.token && state.generation === batch.generation) {
        // Fetch it again from here once the application decides (seek or resume); what was fetched after it is
        // dropped, and an answer in flight for it is ignored.
        state.paused = true;
        state.fetchOffset = batch.fromOffset;
        state.lastFetchedEpoch = batch.epochBefore;
        state.generation++;
        state.fetchSeq++;
        state.inFlight = false;
        this.dropQueued(state);
      }
      this.emit('error', decodeError(batch.topic, batch.partition, batch.fromOffset, err));
      return batch.records;
    }
    let records: KafkaRecord[];
    if (result.batches.length === 1) {
      records = result.batches[0]!.records;
    } else {
      records = [];
      for (const b of result.batches) for (const r of b.records) records.push(r);
    }
    batch.records = records;
    return records;
  }

  /**
   * Takes every queued batch, waiting up to `maxWait` ms for one if none is queued. Resolves with an empty list
   * on timeout or when stopped.
   */
  async take(maxWait: number, filter?: (batch: FetchedBatch) => boolean): Promise<FetchedBatch[]> {
    const deadline = performance.now() + maxWait;
    for (;;) {
      const taken = this.takeNow(filter);
      if (taken.length > 0 || !this.running || this.interrupted) {
        this.interrupted = false;
        return taken;
      }
      const left = deadline - performance.now();
      if (left <= 0) return taken;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.wakeTaker = done;
      });
      this.wakeTaker = undefined;
    }
  }

  /**
   * Ends the `take()` waiting now (or the next one) with what is queued, possibly nothing: its caller is closing and
   * must not sit out `maxWaitTime` on an idle topic.
   */
  interrupt(): void {
    this.interrupted = true;
    this.wakeTaker?.();
  }

  /** The application is done with a batch: its bytes leave the budget and fetching may continue. */
  release(batch: FetchedBatch): void {
    this.bufferedBytes -= batch.bytes;
    batch.raw = undefined;
    const state = this.partitions.get(tpKey(batch.topic, batch.partition));
    if (state && state.token === batch.token && state.generation === batch.generation) state.queued--;
    this.wake();
  }

  /** Drops every queued batch (used on close). */
  clear(): void {
    for (const batch of this.queue) this.release(batch);
    this.queue = [];
  }

  private takeNow(filter?: (batch: FetchedBatch) => boolean): FetchedBatch[] {
    if (this.queue.length === 0) return [];
    if (!filter) {
      const all = this.queue;
      this.queue = [];
      return all;
    }
    const taken: FetchedBatch[] = [];
    const kept: FetchedBatch[] = [];
    for (const b of this.queue) (filter(b) ? taken : kept).push(b);
    this.queue = kept;
    return taken;
  }

  private dropQueued(state: PartitionState): void {
    const kept: FetchedBatch[] = [];
    for (const b of this.queue) {
      if (b.topic === state.topic && b.partition === state.partition) this.bufferedBytes -= b.bytes;
      else kept.push(b);
    }
    this.queue = kept;
    state.queued = 0;
  }

  /** Schedules a pump of every broker (coalesced into one per tick). */
  private wake(): void {
    if (this.pumpScheduled || !this.running) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pumpAll();
    });
  }

  private pumpAll(): void {
    if (!this.running) return;
    const leaders = new Set<number>();
    let heal = false;
    for (const s of this.partitions.values()) {
      const leader = this.cluster.leaderOf(s.topic, s.partition);
      if (leader >= 0) leaders.add(leader);
      else heal = true;
    }
    for (const leader of leaders) {
      this.pump(leader);
      // Its leader is backing off after a failure (down, restarting): watch metadata for the partitions to move.
      if (this.brokers.get(leader)?.retryTimer) heal = true;
    }
    // Some partition has no known (reachable) leader: refresh metadata (in the background) so it gets one.
    if (heal) void this.healMetadata();
  }

  /** Sends what broker `brokerId` should be fetching now: the session fetch, or an eager one beside it. */
  private pump(brokerId: number): void {
    if (!this.running) return;
    let b = this.brokers.get(brokerId);
    if (!b) {
      b = { session: false, eager: 0, failures: 0, retryTimer: undefined };
      this.brokers.set(brokerId, b);
    }
    if (b.retryTimer) return; // backing off after a failure
    if (b.session && b.eager >= MAX_EAGER_FETCHES) return;
    // The session fetch is sent again only once the eager ones are back (within EAGER_MAX_WAIT_MS), so that it takes
    // in every partition: one that was always in an eager fetch when the session fetch went out would be polled
    // eagerly for ever rather than wait in the session.
    if (!b.session && b.eager > 0) return;
    const wanted = this.wanted(brokerId);
    if (wanted.length === 0) return;
    const useSession = !b.session;
    if (useSession) b.session = true;
    else b.eager++;
    const marked = wanted.map((w) => this.partitions.get(tpKey(w.topic, w.partition))!);
    const seqs = marked.map((state) => {
      state.inFlight = true;
      return ++state.fetchSeq;
    });
    const fetch = () => this.fetchOnce(brokerId, wanted, useSession, marked, seqs);
    const origin = this.options.origin;
    void (
      fetchChannel.hasSubscribers && origin
        ? fetchChannel.tracePromise(fetch, { ...origin, broker: brokerId, partitions: wanted })
        : fetch()
    )
      .then(
        () => {
          b.failures = 0;
        },
        (err: unknown) => this.fetchFailed(brokerId, b, err),
      )
      .finally(() => {
        if (useSession) b.session = false;
        else b.eager--;
        // Only the states this fetch marked: a partition revoked and assigned again meanwhile has a new one, and
        // one abandoned to a new leader may already be in that leader's fetch.
        marked.forEach((state, i) => {
          if (state.fetchSeq === seqs[i]) state.inFlight = false;
        });
        this.wake();
      });
  }

  private fetchFailed(brokerId: number, b: BrokerFetches, err: unknown): void {
    this.sessions.get(brokerId)?.reset();
    if (!this.running) return;
    b.failures++;
    if (isKielError(err) && !err.retriable) this.emit('error', err);
    const backoff = Math.min(2_000, 100 * 2 ** Math.min(b.failures, 5));
    b.retryTimer = setTimeout(() => {
      b.retryTimer = undefined;
      void this.cluster
        .refreshMetadata()
        .catch(() => undefined)
        .finally(() => this.wake());
    }, backoff);
  }

  private healing: Promise<void> | undefined;
  private healMetadata(): Promise<void> {
    if (!this.healing) {
      this.healing = (async () => {
        await sleep(HEAL_INTERVAL_MS);
        await this.cluster.refreshMetadata().catch(() => undefined);
      })().finally(() => {
        this.healing = undefined;
        this.wake();
      });
    }
    return this.healing;
  }

  private session(broker: number, version: number): FetchSessionState {
    let session = this.sessions.get(broker);
    if (!session) {
      session = new FetchSessionState(version >= 7);
      this.sessions.set(broker, session);
    }
    return session;
  }

  /** Partitions this broker should fetch now. */
  private wanted(broker: number): WantedPartition[] {
    const wanted: WantedPartition[] = [];
    if (this.bufferedBytes >= this.options.maxBufferedBytes) return wanted;
    for (const s of this.partitions.values()) {
      // At most one batch waiting per partition beyond the one being handled keeps memory and latency bounded.
      if (s.paused || s.resetting || s.inFlight || s.fetchOffset < 0 || s.queued > 1) continue;
      if (this.cluster.leaderOf(s.topic, s.partition) !== broker) continue;
      wanted.push({
        topic: s.topic,
        partition: s.partition,
        fetchOffset: s.fetchOffset,
        maxBytes: s.maxBytes,
        // KIP-320: the leader refuses a fetch naming an older epoch (FENCED_LEADER_EPOCH) or one it does not know
        // yet (UNKNOWN_LEADER_EPOCH), so a consumer never reads from a deposed leader.
        leaderEpoch: this.cluster.leaderEpochOf(s.topic, s.partition),
        lastFetchedEpoch: s.lastFetchedEpoch,
      });
    }
    return wanted;
  }

  private async fetchOnce(
    brokerId: number,
    wanted: WantedPartition[],
    useSession: boolean,
    marked: PartitionState[],
    seqs: number[],
  ): Promise<FetchTraceResult | undefined> {
    // Fetches have connections of their own: a long poll would hold up commits and offset reads behind it.
    const broker = this.cluster.fetchBroker(brokerId, useSession ? 'session' : 'eager');
    await broker.connect();
    const version = broker.versions.Fetch ?? 0;
    // Eager fetches run beside the session fetch, so they stay outside the session.
    const session = useSession ? this.session(brokerId, version) : new FetchSessionState(false);
    const tokens = new Map<string, number>();
    for (const w of wanted)
      tokens.set(tpKey(w.topic, w.partition), this.partitions.get(tpKey(w.topic, w.partition))!.token);
    const started = performance.now();
    const body = session.build(wanted);
    const watchdog = this.watchStuck(brokerId, marked, seqs);
    let response: ResponseOf<'Fetch'>;
    try {
      response = await broker.send(
        'Fetch',
        {
          maxWaitMs: useSession ? this.options.maxWaitTime : Math.min(this.options.maxWaitTime, EAGER_MAX_WAIT_MS),
          minBytes: this.options.minBytes,
          maxBytes: this.options.maxBytes,
          isolationLevel:
            this.options.isolationLevel === 'read_committed'
              ? IsolationLevel.READ_COMMITTED
              : IsolationLevel.READ_UNCOMMITTED,
          ...body,
        },
        { timeout: this.options.maxWaitTime + 30_000 },
      );
    } catch (err) {
      session.reset();
      throw err;
    } finally {
      watchdog.stop();
    }
    if (response.errorCode !== KAFKA_ERROR_CODES.NONE) {
      session.reset();
      if (SESSION_ERRORS.has(response.errorCode)) return undefined;
      throw kafkaError(response.errorCode, `Fetch from broker ${brokerId}`, broker.address);
    }
    session.accept(response.sessionId ?? FetchSession.NO_SESSION_ID);

    const seqOf = new Map<PartitionState, number>();
    marked.forEach((state, i) => seqOf.set(state, seqs[i]!));
    let records = 0;
    let bytes = 0;
    let needMetadata = false;
    let leaderMoved = false;
    for (const topic of response.responses) {
      for (const p of topic.partitions) {
        const k = tpKey(topic.topic, p.partitionIndex);
        const state = this.partitions.get(k);
        // Revoked, re-seeked or re-assigned while the request was in flight, or abandoned to a new leader: the
        // answer is stale.
        if (!state || state.token !== tokens.get(k) || state.fetchSeq !== seqOf.get(state)) continue;
        if (p.errorCode !== KAFKA_ERROR_CODES.NONE) {
          if (LEADER_ERRORS.has(p.errorCode)) {
            // The broker may name the new leader (KIP-951): take it at once, and still refresh to confirm.
            const hint = p.currentLeader;
            if (hint && this.cluster.updateLeader(state.topic, state.partition, hint.leaderId, hint.leaderEpoch)) {
              leaderMoved = true;
            }
            needMetadata = true;
          } else this.partitionError(state, p.errorCode, broker.address);
          continue;
        }
        if (p.divergingEpoch && p.divergingEpoch.endOffset >= 0) {
          this.diverged(state, p.divergingEpoch);
          continue;
        }
        state.highWatermark = p.highWatermark;
        if (!p.records || p.records.length === 0) continue;
        const n = this.queueRecords(state, p);
        records += n;
        bytes += p.records.length;
      }
    }
    const stats: FetchTraceResult = {
      broker: brokerId,
      partitions: wanted.length,
      records,
      bytes,
      durationMs: performance.now() - started,
    };
    this.emit('fetch', stats);
    if (records > 0) this.wakeTaker?.();
    if (needMetadata) {
      session.reset();
      // A leader named in the answer is fetched from at once (finally wakes the pump); metadata follows.
      if (leaderMoved) void this.cluster.refreshMetadata().catch(() => undefined);
      else await this.cluster.refreshMetadata().catch(() => undefined);
    }
    return stats;
  }

  /**
   * Watches a fetch in flight: once it is overdue (`maxWaitTime` + {@link STUCK_GRACE_MS}), refreshes metadata
   * every {@link STUCK_RECHECK_MS}, and hands each partition whose leader is no longer `brokerId` back to the pump
   * (its answer from this fetch, if one ever comes, is then ignored).
   */
  private watchStuck(brokerId: number, marked: PartitionState[], seqs: number[]): { stop(): void } {
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const check = async () => {
      await this.cluster.refreshMetadata().catch(() => undefined);
      if (stopped || !this.running) return;
      let moved = 0;
      let open = 0;
      marked.forEach((state, i) => {
        if (state.fetchSeq !== seqs[i]) return;
        if (this.cluster.leaderOf(state.topic, state.partition) !== brokerId) {
          state.fetchSeq++;
          state.inFlight = false;
          moved++;
        } else open++;
      });
      if (moved > 0) {
        this.sessions.get(brokerId)?.reset();
        this.wake();
      }
      if (open > 0) timer = setTimeout(() => void check(), STUCK_RECHECK_MS);
    };
    timer = setTimeout(() => void check(), this.options.maxWaitTime + STUCK_GRACE_MS);
    return {
      stop() {
        stopped = true;
        clearTimeout(timer);
      },
    };
  }

  /**
   * The leader says the log diverged from what was fetched (Fetch v12 `divergingEpoch`, KIP-320). When its end
   * offset for our epoch is below the position, records were truncated: reported as a `truncation` event, then
   * either fetched on from the divergence point (offsetReset earliest / latest, as the Java consumer does with a
   * reset policy) or paused with an ERR_LOG_TRUNCATED error (offsetReset 'error', the Java consumer's
   * LogTruncationException). Nothing is silently re-read from the start or skipped.
   */
  private diverged(state: PartitionState, diverging: { epoch: number; endOffset: number }): void {
    const position = state.fetchOffset;
    const lastFetchedEpoch = state.lastFetchedEpoch;
    state.lastFetchedEpoch = diverging.epoch;
    if (diverging.endOffset >= position) return; // an older epoch covers our position: nothing was lost
    const paused = this.options.offsetReset === 'error';
    const info: LogTruncation = {
      topic: state.topic,
      partition: state.partition,
      position,
      lastFetchedEpoch,
      divergingEpoch: diverging.epoch,
      divergenceOffset: diverging.endOffset,
      action: paused ? 'paused' : 'resumed',
    };
    if (paused) state.paused = true;
    else state.fetchOffset = diverging.endOffset;
    this.emit('truncation', info);
    // Also an error, so that an application that listens only to `error` still learns that records it may have
    // handled are gone from the log.
    this.emit(
      'error',
      new KielError(
        'ERR_LOG_TRUNCATED',
        `the log of ${state.topic}-${state.partition} was truncated at offset ${diverging.endOffset} (leader epoch ${diverging.epoch}) below the fetch position ${position} (epoch ${lastFetchedEpoch}) after an unclean leader change: ` +
          (paused
            ? "offsetReset is 'error', so the partition is paused (seek to resume)"
            : `records ${diverging.endOffset}..${position - 1} that were fetched are no longer in the log; fetching on from ${diverging.endOffset}`),
        { location: `${state.topic}-${state.partition}`, retriable: !paused },
      ),
    );
  }

  /**
   * Reads the batch headers of a partition's answer (no CRC, no decompression, no record decoded), moves the fetch
   * position past it and queues the raw bytes; {@link recordsOf} decodes them when the application takes them.
   */
  private queueRecords(
    state: PartitionState,
    p: ResponseOf<'Fetch'>['responses'][number]['partitions'][number],
  ): number {
    let scan;
    try {
      scan = scanRecords(p.records!, {
        isolationLevel: this.options.isolationLevel,
        abortedTransactions: p.abortedTransactions,
        fromOffset: state.fetchOffset,
      });
    } catch (err) {
      // Malformed framing: keep the position (nothing is skipped) and pause the partition for the application.
      state.paused = true;
      this.emit('error', decodeError(state.topic, state.partition, state.fetchOffset, err));
      return 0;
    }
    if (scan.nextOffset === undefined) {
      // Not even one whole batch fitted: make room for it next time.
      if (scan.sizeNeeded !== undefined && scan.sizeNeeded > state.maxBytes) state.maxBytes = scan.sizeNeeded;
      return 0;
    }
    state.maxBytes = this.options.maxPartitionBytes;
    const fromOffset = state.fetchOffset;
    const epochBefore = state.lastFetchedEpoch;
    const nextOffset = Math.max(scan.nextOffset, fromOffset);
    state.fetchOffset = nextOffset;
    if (scan.lastEpoch >= 0) state.lastFetchedEpoch = scan.lastEpoch;
    // Control batches and aborted records advance the position without giving the application anything.
    if (scan.records === 0) return 0;
    const batch: FetchedBatch = {
      topic: state.topic,
      partition: state.partition,
      highWatermark: p.highWatermark,
      lastStableOffset: p.lastStableOffset,
      fromOffset,
      nextOffset,
      bytes: scan.bytesConsumed,
      token: state.token,
      generation: state.generation,
      raw: p.records!.subarray(0, scan.bytesConsumed),
      abortedTransactions: p.abortedTransactions ?? null,
      epochBefore,
      records: undefined,
    };
    state.queued++;
    this.bufferedBytes += batch.bytes;
    this.queue.push(batch);
    return scan.records;
  }

  private partitionError(state: PartitionState, errorCode: number, address: string): void {
    if (errorCode === KAFKA_ERROR_CODES.OFFSET_OUT_OF_RANGE) {
      const policy = this.options.offsetReset;
      if (policy === 'error') {
        state.paused = true;
        this.emit(
          'error',
          new KielError(
            'ERR_OFFSET_OUT_OF_RANGE',
            `offset ${state.fetchOffset} of ${state.topic}-${state.partition} is out of range and offsetReset is 'error'; partition paused (seek to resume)`,
            { location: `${state.topic}-${state.partition}` },
          ),
        );
        return;
      }
      void this.resetOffset(state, policy);
      return;
    }
    state.paused = true;
    this.emit('error', kafkaError(errorCode, `Fetch ${state.topic}-${state.partition} (partition paused)`, address));
  }

  /** Resolves the position of a partition with ListOffsets (earliest or latest). */
  private async resetOffset(state: PartitionState, policy: 'earliest' | 'latest'): Promise<void> {
    if (state.resetting) return;
    state.resetting = true;
    const token = state.token;
    const from = state.fetchOffset;
    try {
      const offset = await listOffset(
        this.cluster,
        state.topic,
        state.partition,
        policy === 'earliest' ? ListOffsetsTimestamp.EARLIEST : ListOffsetsTimestamp.LATEST,
        this.options.isolationLevel,
      );
      if (state.token !== token) return;
      state.fetchOffset = offset;
      if (from >= 0) this.emit('reset', { topic: state.topic, partition: state.partition, from, to: offset, policy });
    } catch (err) {
      if (state.token === token) {
        state.paused = true;
        this.emit('error', isKielError(err) ? err : new KielError('ERR_KAFKA', String(err)));
      }
    } finally {
      state.resetting = false;
      this.wake();
    }
  }
}

/** The error for records bytes of a partition that do not decode (the partition is paused at `offset`). */
function decodeError(topic: string, partition: number, offset: number, err: unknown): KielError {
  const code = isKafkaProtocolError(err) ? err.code : 'unknown';
  return new KielError(
    'ERR_PROTOCOL',
    `cannot decode records of ${topic}-${partition} at offset ${offset} (${code}): ${(err as Error).message}; partition paused`,
    { location: `${topic}-${partition}`, cause: err },
  );
}

/**
 * The offset of a partition at a timestamp (ms) or {@link ListOffsetsTimestamp} (EARLIEST / LATEST), from its
 * leader, retrying retriable errors. For a timestamp past the last record, the log end offset.
 */
export async function listOffset(
  cluster: Cluster,
  topic: string,
  partition: number,
  timestamp: number,
  isolationLevel: 'read_uncommitted' | 'read_committed' = 'read_uncommitted',
): Promise<number> {
  return cluster.retry(`ListOffsets ${topic}-${partition}`, async () => {
    const leader = cluster.leaderOf(topic, partition);
    if (leader < 0) {
      throw new KielError('ERR_KAFKA', `${topic}-${partition} has no leader`, {
        retriable: true,
        kafkaError: 'LEADER_NOT_AVAILABLE',
        errorCode: KAFKA_ERROR_CODES.LEADER_NOT_AVAILABLE,
      });
    }
    const response = await cluster.send(leader, 'ListOffsets', {
      isolationLevel:
        isolationLevel === 'read_committed' ? IsolationLevel.READ_COMMITTED : IsolationLevel.READ_UNCOMMITTED,
      topics: [{ name: topic, partitions: [{ partitionIndex: partition, timestamp }] }],
    });
    const answer = response.topics[0]?.partitions[0];
    if (!answer) throw new KielError('ERR_PROTOCOL', `ListOffsets for ${topic}-${partition} returned no partition`);
    if (answer.errorCode !== KAFKA_ERROR_CODES.NONE)
      throw kafkaError(answer.errorCode, `ListOffsets ${topic}-${partition}`);
    if (answer.offset < 0) {
      // No record at or after the timestamp: start at the end.
      if (timestamp >= 0) return listOffset(cluster, topic, partition, ListOffsetsTimestamp.LATEST, isolationLevel);
      throw new KielError('ERR_KAFKA', `ListOffsets ${topic}-${partition} returned offset ${answer.offset}`);
    }
    return answer.offset;
  });
}
