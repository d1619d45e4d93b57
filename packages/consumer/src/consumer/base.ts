import { EventEmitter } from 'node:events';
import type { KafkaRecord } from '@kiel/protocol';
import { Cluster } from '../cluster';
import { KielError, isKielError } from '../errors';
import { Fetcher, type FetchedBatch, type LogTruncation } from '../fetch/fetcher';
import { handlerChannel, messageChannel } from '../diagnostics';
import { MetricsRecorder, type ConsumerMetrics, type PartitionMetrics } from '../metrics';
import {
  deserializers,
  resolveOptions,
  type BaseConsumerOptions,
  type Batch,
  type Message,
  type ResolvedOptions,
} from './options';

/** Events every consumer emits. */
export interface ConsumerEvents {
  /** Connected to the cluster and ready to consume. */
  connect: [];
  /** Closed: every connection is down. */
  disconnect: [];
  /** A batch was handed to the application: statistics for metrics. */
  batch: [stats: { topic: string; partition: number; messages: number; bytes: number; lag: number }];
  /**
   * A message's value could not be deserialized: it was skipped (its offset counts as handled) and the loop goes
   * on, as in kiel. Log it, or send the raw value to a dead-letter topic.
   */
  skipped: [
    info: {
      error: KielError;
      topic: string;
      partition: number;
      offset: number;
      value: Buffer | null;
      record: Message<unknown>;
    },
  ];
  /**
   * A problem the consumer could not heal by itself (a paused partition, a fatal broker error, a bad record). The
   * consumer keeps running. Emitted only when someone listens, so an unobserved error never crashes the process;
   * fatal errors also reject `run()` / `consume()`.
   */
  error: [error: KielError];
  /**
   * A partition's log was truncated below the position after an unclean leader change (KIP-320): records from
   * `divergenceOffset` to `position` - 1 were fetched (and maybe handled) but are gone from the log. With offsetReset
   * earliest or latest the consumer fetches on from `divergenceOffset` (and its position moves back there); with
   * 'error' the partition is paused until `seek`. An ERR_LOG_TRUNCATED error is emitted as well.
   */
  truncation: [info: LogTruncation];
}

/** Handlers of {@link BaseConsumer.run}. Give exactly one of them. */
export interface RunHandlers<V> {
  /** Called with each batch; resolve when it is handled. */
  eachBatch?: (batch: Batch<V>) => Promise<void> | void;
  /** Called with each message in order; resolve when it is handled. */
  eachMessage?: (message: Message<V>) => Promise<void> | void;
}

type State = 'idle' | 'connecting' | 'connected' | 'closing' | 'closed';

const tpKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/** Longest time handlers may hold the event loop before the loop yields, so heartbeats and timers run, ms. */
const MAX_YIELD_INTERVAL = 50;

/** Calls a message handler for the message channel's `tracePromise`, which wants a promise back. */
function callHandler<V>(handler: (message: Message<V>) => Promise<void> | void, message: Message<V>): Promise<void> {
  const result = handler(message);
  return result instanceof Promise ? result : Promise.resolve(result);
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * A partition's handled position. `live` turns false when the position stops belonging to the assignment it was
 * made for (forgotten, re-seeked), so a handler holding the slot writes nothing into a newer one.
 */
interface PositionSlot {
  readonly topic: string;
  readonly partition: number;
  offset: number;
  live: boolean;
}

/** Messages of `eachMessage` between two clock reads when nothing depends on the clock (no group to fence). */
const CLOCK_STRIDE = 32;

/** Marks a batch whose handler called `resolveOffset`. */
const RESOLVED = Symbol('resolved');

/**
 * Vets the messages of one batch one by one before the handler sees them (GroupedConsumer's poison detection, after a
 * crash was seen on the partition): `before` resolves `'skip'` for a message that must not reach the handler (it
 * counts as handled, then `skipped` runs), `'handle'` otherwise.
 */
export interface MessageGuard<V> {
  before(message: Message<V>): Promise<'handle' | 'skip'>;
  skipped(message: Message<V>): Promise<void>;
}

/** A handler call of `run()` under way: when it started, and the first offset of its batch. */
export interface RunningHandler {
  readonly topic: string;
  readonly partition: number;
  readonly startedAt: number;
  readonly firstOffset: number;
}

/**
 * What SingleConsumer and GroupedConsumer share: the cluster, the fetch engine, the three ways to receive messages
 * (kiel's `consume(topic)`, kafkajs-style `run()`, and an async iterator of batches), positions and lifecycle.
 */
export abstract class BaseConsumer<
  V = unknown,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Node's EventMap constraint is any[]
  E extends ConsumerEvents & Record<keyof E, any[]> = ConsumerEvents,
> extends EventEmitter<E> {
  /** The same emitter, typed with the events every consumer has (subclasses add more). */
  private get events(): EventEmitter<ConsumerEvents> {
    return this as unknown as EventEmitter<ConsumerEvents>;
  }

  protected readonly options: ResolvedOptions<V>;
  /** Who publishes on the tracing channels (GroupedConsumer adds its group). */
  protected readonly origin: { consumer: object; clientId: string; group: string | undefined };
  /** Bookkeeping behind {@link metrics}: per batch and per fetch, never per message. */
  protected readonly stats: MetricsRecorder;
  protected readonly cluster: Cluster;
  protected readonly fetcher: Fetcher;
  /** Next offset to hand out (and commit) per partition: one past the last handled message. */
  protected readonly positions = new Map<string, PositionSlot>();
  /** Handlers running per partition, so that a revocation can wait for them. */
  private readonly handling = new Map<string, Promise<unknown>>();
  /**
   * The fetch assignment each partition's position belongs to. A handler of an older assignment (the partition was
   * dropped, or dropped and taken again) finishing late never writes a position.
   */
  private readonly epochs = new Map<string, number>();
  /** Per partition, aborted when its messages may no longer be handed out (revoked, fenced, lost). */
  private readonly aborts = new Map<string, AbortController>();
  /** Partitions the application paused: fencing never resumes them. */
  private readonly userPaused = new Set<string>();
  /** Handler calls of `run()` under way per partition, kept only while {@link tracksHandlers} (stall detection). */
  private readonly runningHandlers = new Map<string, RunningHandler>();
  /** Per partition whose handler call is under way: lets the handler loop go on without it (see abandonHandler). */
  private readonly abandoners = new Map<string, () => void>();
  /** Batches `consume()` returned that the application has not asked past yet, and their revocation gate. */
  private consumed: { batches: FetchedBatch[]; done: () => void } | undefined;
  /** When the handler loop last let the event loop turn. */
  private lastYield = 0;
  private state: State = 'idle';
  /** While set, no batch is handed out (a fenced group member). */
  private gate: { promise: Promise<void>; open: () => void } | undefined;
  private connecting: Promise<void> | undefined;
  private running: Promise<void> | undefined;
  private stopRequested = false;

  constructor(options: BaseConsumerOptions<V>) {
    super();
    this.options = resolveOptions(options);
    const o = this.options;
    this.origin = { consumer: this, clientId: o.clientId, group: undefined };
    this.stats = new MetricsRecorder(options.metricsWindow);
    this.cluster = new Cluster({
      brokers: o.brokers,
      clientId: o.clientId,
      connectTimeout: o.connectTimeout,
      requestTimeout: o.requestTimeout,
      metadataMaxAge: o.metadataMaxAge,
      ...(o.tls !== undefined ? { tls: o.tls } : {}),
      ...(o.sasl !== undefined ? { sasl: o.sasl } : {}),
      ...(o.retry !== undefined ? { retry: o.retry } : {}),
    });
    this.fetcher = new Fetcher(this.cluster, {
      maxWaitTime: o.maxWaitTime,
      minBytes: o.minBytes,
      maxBytes: o.maxBytes,
      maxPartitionBytes: o.maxPartitionBytes,
      maxBufferedBytes: o.maxBufferedBytes,
      isolationLevel: o.isolationLevel,
      verifyCrc: o.verifyCrc,
      offsetReset: o.offsetReset,
      origin: this.origin,
      ...(o.codecs ? { codecs: o.codecs } : {}),
    });
    this.fetcher.on('truncation', (info) => {
      // Fetching goes on from the divergence point: a commit must not store a position the log no longer reaches.
      const known = this.positions.get(tpKey(info.topic, info.partition));
      if (info.action === 'resumed' && known && known.offset > info.divergenceOffset) {
        known.offset = info.divergenceOffset;
      }
      this.events.emit('truncation', info);
    });
    this.fetcher.on('error', (err) => this.reportError(err));
    this.fetcher.on('fetch', ({ bytes, durationMs }) => {
      const now = performance.now();
      this.stats.fetches.record(durationMs, now);
      this.stats.fetchBytes.record(bytes, now);
    });
    this.events.on('batch', ({ topic, partition, messages, bytes, lag }) =>
      this.stats.batch(tpKey(topic, partition), messages, bytes, lag, performance.now()),
    );
  }

  /**
   * A snapshot of this consumer's figures under the Java consumer's metric names: per-partition `records-lag`,
   * `records-consumed-rate`, fetch latency and size, and more (see {@link ConsumerMetrics}). Cheap enough to call on
   * every scrape; the bookkeeping behind it runs per batch and per fetch, never per message.
   */
  metrics(): ConsumerMetrics {
    const now = performance.now();
    const s = this.stats;
    const partitions: PartitionMetrics[] = [];
    let lagMax = NaN;
    for (const a of this.fetcher.assigned()) {
      const k = tpKey(a.topic, a.partition);
      const handled = this.positions.get(k)?.offset;
      const position = handled ?? (a.fetchOffset >= 0 ? a.fetchOffset : -1);
      const lag = a.highWatermark >= 0 && position >= 0 ? Math.max(0, a.highWatermark - position) : NaN;
      const p = s.partitions.get(k);
      const seen = p ? p.lag.max(now) : NaN;
      const max = Number.isNaN(seen) ? lag : Number.isNaN(lag) ? seen : Math.max(seen, lag);
      if (!Number.isNaN(max) && !(max <= lagMax)) lagMax = max;
      partitions.push({
        topic: a.topic,
        partition: a.partition,
        'records-lag': lag,
        'records-lag-max': max,
        'high-watermark': a.highWatermark,
        position,
        'records-consumed-rate': p ? p.records.rate(now) : 0,
        paused: a.paused,
      });
    }
    partitions.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
    return {
      timestamp: Date.now(),
      clientId: this.options.clientId,
      window: { sampleMs: s.sampleMs, samples: s.samples },
      'assigned-partitions': partitions.length,
      'records-consumed-rate': s.batches.rate(now),
      'records-consumed-total': s.batches.totalSum,
      'bytes-consumed-rate': s.bytes.rate(now),
      'bytes-consumed-total': s.bytes.totalSum,
      'records-lag-max': lagMax,
      'records-per-batch-avg': s.batches.avg(now),
      'fetch-rate': s.fetches.countRate(now),
      'fetch-total': s.fetches.totalCount,
      'fetch-latency-avg': s.fetches.avg(now),
      'fetch-latency-max': s.fetches.max(now),
      'fetch-size-avg': s.fetchBytes.avg(now),
      'fetch-size-max': s.fetchBytes.max(now),
      partitions,
    };
  }

  /** Connects to the cluster and prepares what to fetch. Idempotent; concurrent calls share one attempt. */
  connect(): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    if (this.state === 'closing' || this.state === 'closed') return Promise.reject(this.closedError());
    if (!this.connecting) {
      this.state = 'connecting';
      this.connecting = (async () => {
        try {
          await this.cluster.connect();
          await this.onConnect();
          this.fetcher.start();
          this.state = 'connected';
          this.events.emit('connect');
        } catch (err) {
          this.state = 'idle';
          this.cluster.close();
          await this.fetcher.stop();
          throw err;
        } finally {
          this.connecting = undefined;
        }
      })();
    }
    return this.connecting;
  }

  /**
   * kiel's pull style: the messages of `topic` fetched since the last call, waiting up to `maxWaitTime` for some.
   * Returns an empty list when nothing arrived (or the partitions are not ready yet). The messages returned count as
   * handled once the application asks for more (the next `consume()`), calls `commitOffsets()` or closes the
   * consumer; until then a revocation of their partitions waits, so they are never handed to a second member while
   * the application may still be working on them, and a crash redelivers them.
   */
  async consume(topic: string): Promise<Message<V>[]> {
    if (typeof topic !== 'string' || topic === '') {
      throw new KielError('ERR_INVALID_CONFIG', 'consume(topic): topic must be a non-empty string', {
        option: 'topic',
      });
    }
    await this.connect();
    this.settleConsumed();
    await this.afterConsume(topic);
    await this.onConsume(topic);
    if (this.gate) return [];
    const fetched = await this.fetcher.take(this.options.maxWaitTime, (b) => b.topic === topic);
    const messages: Message<V>[] = [];
    const kept: FetchedBatch[] = [];
    for (let i = 0; i < fetched.length; i++) {
      const fb = fetched[i]!;
      if (!this.fetcher.isCurrent(fb)) {
        this.fetcher.release(fb);
        continue;
      }
      if (!this.mayHandOut(fb.topic, fb.partition)) {
        // Fenced meanwhile: nothing more goes out; these batches are fetched again once it is safe.
        this.rewind(fetched.slice(i));
        this.onStale();
        break;
      }
      const batch = this.toBatch(fb);
      if (!batch) {
        this.markHandled(fb.topic, fb.partition, fb.nextOffset, fb.token);
        this.fetcher.release(fb);
        continue;
      }
      for (const m of batch.messages) messages.push(m);
      kept.push(fb);
    }
    if (kept.length > 0) this.holdConsumed(kept);
    return messages;
  }

  /**
   * kafkajs's style: calls the handler for each batch (or message) until {@link stop} or {@link close}.
   * A handler that throws stops the run: the partition goes back to its first unhandled message (nothing is
   * lost) and `run()` rejects with the handler's error. Call `run()` again to resume.
   */
  async run(handlers: RunHandlers<V>): Promise<void> {
    const { eachBatch, eachMessage } = handlers ?? {};
    if ((eachBatch === undefined) === (eachMessage === undefined)) {
      throw new KielError('ERR_INVALID_CONFIG', 'run() needs exactly one of eachBatch and eachMessage', {
        option: 'handlers',
      });
    }
    if (this.running) throw new KielError('ERR_INVALID_CONFIG', 'run() is already running', { option: 'run' });
    await this.connect();
    this.stopRequested = false;
    const loop = this.loop(eachBatch, eachMessage);
    this.running = loop.finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * An async iterator of batches. A batch counts as handled when the next one is asked for; leaving the loop
   * (break or throw) puts the current batch back, to be delivered again.
   */
  async *batches(): AsyncGenerator<Batch<V>, void, undefined> {
    await this.connect();
    this.stopRequested = false;
    let pending: FetchedBatch[] = [];
    let current: FetchedBatch | undefined;
    try {
      while (!this.stopRequested && this.state === 'connected') {
        await this.passGate();
        if (pending.length === 0) pending = await this.fetcher.take(this.options.maxWaitTime);
        const fb = pending.shift();
        if (!fb) continue;
        if (!this.fetcher.isCurrent(fb)) {
          this.fetcher.release(fb);
          continue;
        }
        if (!this.mayHandOut(fb.topic, fb.partition)) {
          this.rewind([fb, ...pending]);
          pending = [];
          await this.stale();
          continue;
        }
        const batch = this.toBatch(fb);
        if (!batch) {
          this.markHandled(fb.topic, fb.partition, fb.nextOffset, fb.token);
          this.fetcher.release(fb);
          continue;
        }
        current = fb;
        // While the application holds the batch, a revocation of its partition waits for it.
        const k = tpKey(fb.topic, fb.partition);
        let handed!: () => void;
        this.handling.set(k, new Promise<void>((resolve) => (handed = resolve)));
        try {
          yield batch;
          current = undefined;
          if (!this.stoppedEarly(batch)) this.markHandled(fb.topic, fb.partition, fb.nextOffset, fb.token);
        } finally {
          this.handling.delete(k);
          handed();
        }
        await this.afterBatch(batch);
        this.fetcher.release(fb);
      }
    } finally {
      this.rewind([...(current ? [current] : []), ...pending]);
    }
  }

  /** Stops `run()` (and iterators) after the batch in hand; resolves when it has stopped. */
  async stop(): Promise<void> {
    this.stopRequested = true;
    // The run loop may be waiting up to maxWaitTime for data on an idle topic: it is to stop now.
    if (this.running) this.fetcher.interrupt();
    await this.running?.catch(() => undefined);
  }

  /**
   * Stops consuming, lets running handlers finish, then closes every connection. Idempotent; a process that calls
   * it on SIGTERM exits cleanly.
   */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    if (this.state === 'closing') {
      await new Promise<void>((resolve) => this.events.once('disconnect', () => resolve()));
      return;
    }
    if (this.connecting) await this.connecting.catch(() => undefined);
    this.state = 'closing';
    this.stopRequested = true;
    // Closing is asking for no more: what consume() returned was handled, and its commit is the last.
    this.settleConsumed();
    // The run loop may be waiting up to maxWaitTime for data on an idle topic: it is to stop now.
    this.fetcher.interrupt();
    try {
      await this.running?.catch(() => undefined);
      await Promise.allSettled([...this.handling.values()]);
      await this.fetcher.stop();
      await this.onClose();
    } finally {
      this.fetcher.clear();
      this.cluster.close();
      this.state = 'closed';
      this.events.emit('disconnect');
    }
  }

  /** The next offset to hand out per partition (one past the last handled message). */
  get handledPositions(): ReadonlyArray<{ topic: string; partition: number; offset: number }> {
    return [...this.positions.values()].map(({ topic, partition, offset }) => ({ topic, partition, offset }));
  }

  /** Pauses fetching the given partitions (messages already fetched are still delivered). */
  pause(partitions: ReadonlyArray<{ topic: string; partition: number }>): void {
    for (const { topic, partition } of partitions) {
      this.userPaused.add(tpKey(topic, partition));
      this.fetcher.setPaused(topic, partition, true);
    }
  }

  /** Resumes fetching the given partitions (while a grouped member is fenced, once it is not). */
  resume(partitions: ReadonlyArray<{ topic: string; partition: number }>): void {
    for (const { topic, partition } of partitions) {
      this.userPaused.delete(tpKey(topic, partition));
      if (!this.gate) this.fetcher.setPaused(topic, partition, false);
    }
  }

  /** Subclass hook: after the cluster is connected, before fetching starts. */
  protected abstract onConnect(): Promise<void>;
  /** Subclass hook: before `consume(topic)` takes messages (subscribe the topic if needed). */
  protected async onConsume(_topic: string): Promise<void> {}
  /** Subclass hook: after `consume(topic)` handed messages out (autocommit). */
  protected async afterConsume(_topic: string): Promise<void> {}
  /** Subclass hook: after a batch of `run()` or the iterator was handled. */
  protected async afterBatch(_batch: Batch<V>): Promise<void> {}
  /** Subclass hook: now and then while `eachMessage` works through a long batch (when the loop yields). */
  protected duringBatch(): void {}
  /** Subclass hook: while closing, after handlers finished and fetching stopped. */
  protected async onClose(): Promise<void> {}

  /**
   * Whether messages of a partition may be handed out now. Read before every batch; GroupedConsumer checks its claim
   * and the fencing clock.
   */
  protected mayHandOut(_topic: string, _partition: number): boolean {
    return true;
  }

  /**
   * Whether the fencing clock has run out at `now` (performance.now()). Read before every message of `eachMessage`,
   * so it must be cheap. A consumer without a group never goes stale.
   */
  protected clockStale(_now: number): boolean {
    return false;
  }

  /** Called when a check found a partition stale before anything else noticed (GroupedConsumer fences at once). */
  protected onStale(): void {}

  /** Whether this consumer fences itself (a group member): then the clock is read before every message. */
  protected get fences(): boolean {
    return false;
  }

  /** How long handlers may hold the event loop before the handler loop lets it turn, ms. */
  protected get yieldInterval(): number {
    return MAX_YIELD_INTERVAL;
  }

  /** Emits `error` if anyone listens (an unobserved error must not crash the process). */
  protected reportError(error: KielError): void {
    if (this.events.listenerCount('error') > 0) this.events.emit('error', error);
  }

  /**
   * Stops (true) or resumes (false) handing out batches, and fetching with it: closing aborts every partition's
   * signal; opening resumes fetching every partition the application did not pause itself.
   */
  protected setGate(closed: boolean, reason?: KielError): void {
    if (closed && !this.gate) {
      let open!: () => void;
      const promise = new Promise<void>((resolve) => (open = resolve));
      this.gate = { promise, open };
      for (const { topic, partition } of this.fetcher.assigned()) this.fetcher.setPaused(topic, partition, true);
      const why = reason ?? new KielError('ERR_FENCED', 'handing out messages is paused');
      for (const controller of this.aborts.values()) controller.abort(why);
      this.aborts.clear();
    } else if (!closed && this.gate) {
      this.gate.open();
      this.gate = undefined;
      for (const { topic, partition } of this.fetcher.assigned()) {
        if (!this.userPaused.has(tpKey(topic, partition))) this.fetcher.setPaused(topic, partition, false);
      }
    }
  }

  /**
   * Starts (or re-seeks) fetching a partition at `offset` (negative: by the reset policy). Positions recorded from
   * now on belong to this assignment; `position`, if given, is the partition's handled position from the start.
   */
  protected startFetching(topic: string, partition: number, offset: number, position?: number): void {
    const k = tpKey(topic, partition);
    this.epochs.set(k, this.fetcher.assign(topic, partition, offset));
    // Assigned while fenced or paused by the application: fetched only once that ends.
    if (this.gate || this.userPaused.has(k)) this.fetcher.setPaused(topic, partition, true);
    const old = this.positions.get(k);
    if (old) old.live = false;
    if (position !== undefined) this.positions.set(k, { topic, partition, offset: position, live: true });
    else this.positions.delete(k);
  }

  /** Stops fetching a partition and aborts its handlers' signal; its position stays until forgotten. */
  protected stopFetching(topic: string, partition: number, reason: KielError): void {
    this.fetcher.revoke(topic, partition);
    this.abortPartition(tpKey(topic, partition), reason);
  }

  private abortPartition(k: string, reason: KielError): void {
    const controller = this.aborts.get(k);
    if (!controller) return;
    this.aborts.delete(k);
    controller.abort(reason);
  }

  /** Waits while the gate is closed (or until the consumer stops). */
  private async passGate(): Promise<void> {
    while (this.gate && !this.stopRequested && this.state === 'connected') {
      await Promise.race([this.gate.promise, new Promise((resolve) => setTimeout(resolve, 100))]);
    }
  }

  /**
   * Records that everything before `offset` of a partition is handled, for the assignment `token` of the batch
   * handled. Ignored when that assignment is over (the partition was dropped, or dropped and taken again).
   */
  private markHandled(topic: string, partition: number, offset: number, token: number): void {
    const k = tpKey(topic, partition);
    if (this.epochs.get(k) !== token) return;
    const known = this.positions.get(k);
    if (known) known.offset = offset;
    else this.positions.set(k, { topic, partition, offset, live: true });
  }

  /** The position slot a batch's handler writes into, or undefined when the batch's assignment is over. */
  private slotFor(fb: FetchedBatch): PositionSlot | undefined {
    const k = tpKey(fb.topic, fb.partition);
    if (this.epochs.get(k) !== fb.token) return undefined;
    let slot = this.positions.get(k);
    if (!slot) {
      slot = { topic: fb.topic, partition: fb.partition, offset: fb.fromOffset, live: true };
      this.positions.set(k, slot);
    }
    return slot;
  }

  /** The fetcher reset a partition's position by policy: nothing handled yet there, so the position moves with it. */
  protected positionReset(topic: string, partition: number, from: number, to: number): void {
    const known = this.positions.get(tpKey(topic, partition));
    if (known && known.offset === from) known.offset = to;
  }

  /** The handled position of a partition, if any message of it was handled. */
  protected positionOf(topic: string, partition: number): number | undefined {
    return this.positions.get(tpKey(topic, partition))?.offset;
  }

  /** Forgets the handled position of a partition (it is no longer ours); late handlers no longer record one. */
  protected forgetPosition(topic: string, partition: number): void {
    const k = tpKey(topic, partition);
    const slot = this.positions.get(k);
    if (slot) slot.live = false;
    this.positions.delete(k);
    this.epochs.delete(k);
  }

  /**
   * Resolves true when the handler running for a partition (if any) has finished, or false once `timeout` ms passed
   * first (the handler is still running).
   */
  protected async handlerDone(topic: string, partition: number, timeout = Infinity): Promise<boolean> {
    const running = this.handling.get(tpKey(topic, partition));
    if (!running) return true;
    const done = running.then(
      () => true,
      () => true,
    );
    if (!Number.isFinite(timeout)) return done;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeout)));
    try {
      return await Promise.race([done, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** What `consume()` returned counts as handled now: the application asked for more, committed or closes. */
  protected settleConsumed(): void {
    const held = this.consumed;
    if (!held) return;
    this.consumed = undefined;
    for (const fb of held.batches) {
      this.markHandled(fb.topic, fb.partition, fb.nextOffset, fb.token);
      this.fetcher.release(fb);
    }
    held.done();
  }

  protected get connected(): boolean {
    return this.state === 'connected';
  }

  protected closedError(): KielError {
    return new KielError('ERR_CLOSED', 'the consumer was closed');
  }

  /** Holds what `consume()` returned until the application asks for more; a revocation waits for it meanwhile. */
  private holdConsumed(batches: FetchedBatch[]): void {
    let done!: () => void;
    const settled = new Promise<void>((resolve) => (done = resolve));
    this.consumed = { batches, done };
    for (const fb of batches) this.handling.set(tpKey(fb.topic, fb.partition), settled);
    void settled.then(() => {
      for (const fb of batches) {
        const k = tpKey(fb.topic, fb.partition);
        if (this.handling.get(k) === settled) this.handling.delete(k);
      }
    });
  }

  /** Puts unhandled batches back: their partitions are fetched again from the first unhandled offset. */
  private rewind(unhandled: FetchedBatch[]): void {
    const seen = new Set<string>();
    for (const fb of unhandled) {
      const k = tpKey(fb.topic, fb.partition);
      if (seen.has(k) || !this.fetcher.isCurrent(fb)) continue;
      seen.add(k);
      const position = this.positions.get(k)?.offset ?? fb.fromOffset;
      // A re-seek keeps the partition's paused state; the position moves to a fresh slot of the new assignment.
      this.epochs.set(k, this.fetcher.assign(fb.topic, fb.partition, position));
      const old = this.positions.get(k);
      if (old) {
        old.live = false;
        this.positions.set(k, { topic: old.topic, partition: old.partition, offset: old.offset, live: true });
      }
    }
    for (const fb of unhandled) this.fetcher.release(fb);
  }

  /** A check found handing out unsafe: let the subclass react (fence), and never spin while it does. */
  private async stale(): Promise<void> {
    this.onStale();
    if (this.gate) await this.passGate();
    else await new Promise((resolve) => setTimeout(resolve, 10));
  }

  private async loop(
    eachBatch: RunHandlers<V>['eachBatch'],
    eachMessage: RunHandlers<V>['eachMessage'],
  ): Promise<void> {
    while (!this.stopRequested && this.state === 'connected') {
      await this.passGate();
      const fetched = await this.fetcher.take(this.options.maxWaitTime);
      this.lastYield = performance.now();
      for (let i = 0; i < fetched.length; i++) {
        const fb = fetched[i]!;
        if (this.gate) await this.passGate();
        if (this.stopRequested) {
          this.rewind(fetched.slice(i));
          return;
        }
        if (!this.fetcher.isCurrent(fb)) {
          this.fetcher.release(fb);
          continue;
        }
        if (!this.mayHandOut(fb.topic, fb.partition)) {
          // Ownership or the fencing clock failed before anything else noticed: nothing more goes out.
          this.rewind(fetched.slice(i));
          await this.stale();
          break;
        }
        const batch = this.toBatch(fb);
        if (!batch) {
          this.markHandled(fb.topic, fb.partition, fb.nextOffset, fb.token);
          this.fetcher.release(fb);
          continue;
        }
        const k = tpKey(fb.topic, fb.partition);
        // The unit a revocation waits for: the handler, then the position it reached.
        // Tracing is decided once per batch: unsubscribed, the handler path is exactly the untraced one.
        const work =
          this.batchGuard !== undefined
            ? this.guardedWork(fb, batch, eachBatch, eachMessage)
            : this.handlerWork(fb, batch, eachBatch, eachMessage);
        this.handling.set(k, work);
        if (this.tracksHandlers) {
          this.runningHandlers.set(k, {
            topic: fb.topic,
            partition: fb.partition,
            startedAt: performance.now(),
            firstOffset: batch.firstOffset,
          });
        }
        // A handler that outlives its partition's handoff bound is let go: the loop goes on with the other partitions.
        const abandoned = new Promise<boolean>((resolve) => this.abandoners.set(k, () => resolve(false)));
        let complete: boolean;
        try {
          complete = await Promise.race([work, abandoned]);
        } catch (err) {
          this.rewind(fetched.slice(i));
          throw err;
        } finally {
          if (this.handling.get(k) === work) this.handling.delete(k);
          this.abandoners.delete(k);
          this.runningHandlers.delete(k);
        }
        if (!complete) {
          // Stopped early: revoked or lost (the batch is stale, dropped), or fenced (fetched again once it is safe).
          if (this.fetcher.isCurrent(fb)) {
            this.rewind(fetched.slice(i));
            await this.stale();
            break;
          }
          this.fetcher.release(fb);
          continue;
        }
        await this.afterBatch(batch);
        this.fetcher.release(fb);
      }
    }
  }

  /** The handler call for one batch, traced when someone subscribes. */
  private handlerWork(
    fb: FetchedBatch,
    batch: Batch<V>,
    eachBatch: RunHandlers<V>['eachBatch'],
    eachMessage: RunHandlers<V>['eachMessage'],
  ): Promise<boolean> {
    return handlerChannel.hasSubscribers || messageChannel.hasSubscribers
      ? this.traced(fb, batch, eachBatch, eachMessage)
      : eachBatch
        ? this.eachBatchOf(fb, batch, eachBatch)
        : this.eachMessageOf(fb, batch, eachMessage!);
  }

  /** The subclass's {@link batchGuard} first; then the handler, or the messages one by one under its guard. */
  private async guardedWork(
    fb: FetchedBatch,
    batch: Batch<V>,
    eachBatch: RunHandlers<V>['eachBatch'],
    eachMessage: RunHandlers<V>['eachMessage'],
  ): Promise<boolean> {
    const guard = await this.batchGuard!(batch);
    // Revoked, fenced or lost while the guard wrote to the backend: nothing goes out.
    if (batch.signal.aborted || !this.mayHandOut(fb.topic, fb.partition)) return false;
    if (guard === undefined) return this.handlerWork(fb, batch, eachBatch, eachMessage);
    const { signal, messages } = batch;
    const slot = this.slotFor(fb);
    for (const message of messages) {
      if (signal.aborted || this.clockStale(performance.now())) return false;
      const verdict = await guard.before(message);
      if (signal.aborted || !this.mayHandOut(fb.topic, fb.partition)) return false;
      if (verdict === 'skip') {
        if (slot !== undefined && slot.live) slot.offset = message.offset + 1;
        await guard.skipped(message);
        continue;
      }
      if (eachMessage) {
        await eachMessage(message);
      } else {
        // One message per handler call: the guard vets each before the handler sees it.
        const single: Batch<V> = {
          topic: batch.topic,
          partition: batch.partition,
          messages: [message],
          highWatermark: batch.highWatermark,
          firstOffset: message.offset,
          lastOffset: message.offset,
          signal,
          isStale: batch.isStale,
          resolveOffset: batch.resolveOffset,
        };
        try {
          await eachBatch!(single);
        } catch (err) {
          if (signal.aborted) return false;
          throw err;
        }
      }
      if (slot !== undefined && slot.live) slot.offset = message.offset + 1;
    }
    return true;
  }

  /**
   * Subclass hook, set to run before each batch of `run()` reaches the handler (GroupedConsumer's poison detection
   * writes its in-flight marker here). It may return a guard that vets the batch's messages one by one.
   */
  protected batchGuard: ((batch: Batch<V>) => Promise<MessageGuard<V> | undefined>) | undefined;

  /** Whether to keep {@link handlersRunning} (GroupedConsumer's stall detection). */
  protected tracksHandlers = false;

  /** The handler calls of `run()` under way, per partition (only while {@link tracksHandlers}). */
  protected handlersRunning(): IterableIterator<RunningHandler> {
    return this.runningHandlers.values();
  }

  /**
   * Lets the handler loop go on without the handler call running on a partition (one that outlived its handoff
   * bound): the call goes on in the background, but its result is ignored, as the handoff already let the partition
   * go. Does nothing when no call runs there.
   */
  protected abandonHandler(topic: string, partition: number): void {
    this.abandoners.get(tpKey(topic, partition))?.();
  }

  /**
   * Calls the handler for each message of a batch, reading the partition's signal and the fencing clock before each
   * one, and lets the event loop turn whenever handlers held it for `yieldInterval`, so that heartbeats go out while
   * a CPU-bound handler works. Resolves true when the whole batch was handled, false when it stopped early.
   */
  private async eachMessageOf(
    fb: FetchedBatch,
    batch: Batch<V>,
    handler: NonNullable<RunHandlers<V>['eachMessage']>,
  ): Promise<boolean> {
    const { signal, messages } = batch;
    const interval = this.yieldInterval;
    // A group member reads the clock before every message; a consumer without one only to yield, now and then
    // (a clock read costs about 100 ns here, close to a tenth of a message).
    const stride = this.fences ? 1 : CLOCK_STRIDE;
    const slot = this.slotFor(fb);
    for (let i = 0; i < messages.length; i++) {
      if (i % stride === 0) {
        let now = performance.now();
        if (now - this.lastYield >= interval) {
          await nextTurn();
          this.lastYield = now = performance.now();
          this.duringBatch();
        }
        if (this.clockStale(now)) return false;
      }
      if (signal.aborted) return false;
      const message = messages[i]!;
      await handler(message);
      // Handled up to here: a failure in a later message resumes after this one.
      if (slot !== undefined && slot.live) slot.offset = message.offset + 1;
    }
    return true;
  }

  /** A batch's handler call published on `kiel:consumer:handler`, and each message on `kiel:consumer:message`. */
  private traced(
    fb: FetchedBatch,
    batch: Batch<V>,
    eachBatch: RunHandlers<V>['eachBatch'],
    eachMessage: RunHandlers<V>['eachMessage'],
  ): Promise<boolean> {
    let perMessage = eachMessage!;
    if (!eachBatch && messageChannel.hasSubscribers) {
      // Fields spelled out: an object spread here costs several µs per message.
      const { consumer, clientId, group } = this.origin;
      const handler = perMessage;
      perMessage = (message) =>
        messageChannel.tracePromise(
          callHandler,
          {
            consumer,
            clientId,
            group,
            topic: message.topic,
            partition: message.partition,
            offset: message.offset,
            message: message as Message<unknown>,
          },
          undefined,
          handler,
          message,
        );
    }
    const run = () => (eachBatch ? this.eachBatchOf(fb, batch, eachBatch) : this.eachMessageOf(fb, batch, perMessage));
    if (!handlerChannel.hasSubscribers) return run();
    const { consumer, clientId, group } = this.origin;
    return handlerChannel.tracePromise(run, {
      consumer,
      clientId,
      group,
      topic: batch.topic,
      partition: batch.partition,
      firstOffset: batch.firstOffset,
      lastOffset: batch.lastOffset,
      highWatermark: batch.highWatermark,
      batch: batch as Batch<unknown>,
      kind: eachBatch ? 'eachBatch' : 'eachMessage',
    });
  }

  /** Calls a batch handler; see {@link Batch.resolveOffset} for what counts as handled when it stops early. */
  private async eachBatchOf(
    fb: FetchedBatch,
    batch: Batch<V>,
    handler: NonNullable<RunHandlers<V>['eachBatch']>,
  ): Promise<boolean> {
    try {
      await handler(batch);
    } catch (err) {
      if (batch.signal.aborted) return false;
      throw err;
    }
    this.lastYield = performance.now();
    if (this.stoppedEarly(batch)) return false;
    this.markHandled(fb.topic, fb.partition, fb.nextOffset, fb.token);
    return true;
  }

  /** Whether a batch's handler stopped early: its signal was aborted and it resolved offsets itself. */
  private stoppedEarly(batch: Batch<V>): boolean {
    return batch.signal.aborted && (batch as Batch<V> & { [RESOLVED]?: boolean })[RESOLVED] === true;
  }

  /** Turns fetched records into messages in place: adds topic and partition, deserializes values. */
  private toBatch(fb: FetchedBatch): Batch<V> | null {
    const { topic, partition } = fb;
    // Decoded now, not on arrival: records die young. Empty when compacted away or undecodable (reported, paused).
    const records = this.fetcher.recordsOf(fb);
    if (records.length === 0) return null;
    const deserialize = this.options.deserializer;
    const raw = deserialize === (deserializers.raw as unknown);
    let messages = records as unknown as Array<Message<V> & { topic: string; partition: number; value: V }>;
    let kept: typeof messages | undefined;
    for (let i = 0; i < records.length; i++) {
      const record = records[i] as KafkaRecord & { topic?: string; partition?: number };
      record.topic = topic;
      record.partition = partition;
      if (!raw) {
        try {
          (record as { value: unknown }).value = deserialize(record.value, record);
        } catch (err) {
          if (!kept) kept = messages.slice(0, i);
          this.skip(topic, partition, record, err);
          continue;
        }
      }
      if (kept) kept.push(messages[i]!);
    }
    if (kept) messages = kept;
    const last = records[records.length - 1]!;
    this.events.emit('batch', {
      topic,
      partition,
      messages: messages.length,
      bytes: fb.bytes,
      lag: Math.max(0, fb.highWatermark - last.offset - 1),
    });
    if (messages.length === 0) return null;
    const k = tpKey(topic, partition);
    let controller = this.aborts.get(k);
    if (!controller) this.aborts.set(k, (controller = new AbortController()));
    const signal = controller.signal;
    const firstOffset = records[0]!.offset;
    const lastOffset = last.offset;
    const batch: Batch<V> & { [RESOLVED]?: boolean } = {
      topic,
      partition,
      messages,
      highWatermark: fb.highWatermark,
      firstOffset,
      lastOffset,
      signal,
      isStale: () =>
        signal.aborted ||
        !this.fetcher.isCurrent(fb) ||
        !this.mayHandOut(topic, partition) ||
        this.clockStale(performance.now()),
      resolveOffset: (offset: number) => {
        if (!Number.isInteger(offset) || offset < firstOffset || offset > lastOffset) {
          throw new KielError(
            'ERR_INVALID_CONFIG',
            `resolveOffset(${offset}): not an offset of this batch of ${topic}-${partition} (${firstOffset}..${lastOffset})`,
            { option: 'offset' },
          );
        }
        batch[RESOLVED] = true;
        this.markHandled(topic, partition, offset + 1, fb.token);
      },
    };
    return batch;
  }

  private skip(topic: string, partition: number, record: KafkaRecord, err: unknown): void {
    const error = isKielError(err)
      ? err
      : new KielError(
          'ERR_DESERIALIZE',
          `cannot deserialize ${topic}-${partition} offset ${record.offset}: ${(err as Error)?.message ?? err}`,
          {
            location: `${topic}-${partition}@${record.offset}`,
            cause: err,
          },
        );
    this.events.emit('skipped', {
      error,
      topic,
      partition,
      offset: record.offset,
      value: record.value,
      record: record as unknown as Message<unknown>,
    });
  }
}
