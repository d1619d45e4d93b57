import { debuglog } from 'node:util';
import { EtcdWatchStreamEnded } from 'etcd3';
import type { IDuplexStream, IKeyValue, IWatchRequest, IWatchResponse } from 'etcd3';
import { toBackendError } from './errors';
import type { BackendError } from '@kiel/consumer';

/** What a {@link KeyWatch} needs from its backend. */
export interface WatchHost {
  /** Reads the key (or the range), returning its key-values and the store revision of the read. */
  range(key: Buffer, rangeEnd: Buffer | undefined, location: string): Promise<{ kvs: IKeyValue[]; revision: bigint }>;
  /**
   * Reads how many keys the range holds and how many of them changed after revision `after`, with the store revision
   * of the read (one keys-only range filtered by mod revision: no values cross the wire).
   */
  probe(
    key: Buffer,
    rangeEnd: Buffer | undefined,
    location: string,
    after: bigint,
  ): Promise<{ count: number; changed: number; revision: bigint }>;
  /** Opens a new watch stream. */
  openStream(): Promise<IDuplexStream<IWatchRequest, IWatchResponse>>;
  /**
   * Makes the client fetch a new auth token. etcd forgets its tokens when it restarts; etcd3 renews them only when
   * a unary call is refused, never for a stream, so a watch refused for its token asks for a unary call first.
   */
  refreshAuth(): Promise<void>;
  /** Reports a problem that is not the answer to a call (the backend's `error` event). */
  reportError(error: BackendError): void;
}

/** Where to watch and what to do with each state. */
export interface KeyWatchOptions {
  readonly key: Buffer;
  /** Set for a prefix watch: the end of the key range. */
  readonly rangeEnd?: Buffer;
  /** The key or prefix, for messages. */
  readonly location: string;
  /** Receives every state, as the current key-values sorted by key. Called outside any caller's stack. */
  readonly deliver: (kvs: IKeyValue[]) => void;
  /**
   * How often the watch checks itself against a read (keys and revisions only): a watch whose state still differs
   * from a read at the next check, without having reached that read's revision, is stuck, and is re-created
   * (watch again, read again, deliver). Off when undefined.
   */
  readonly checkEveryMs?: number;
}

/** A trace of each watch's life on stderr, with NODE_DEBUG=kiel-etcd (off, it costs a function call). */
const trace = debuglog('kiel-etcd');

// Backoff between attempts to re-open a broken watch stream.
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2_000;

/**
 * One watched key or prefix, kept in sync with etcd: a local copy of its key-values, updated from the watch
 * stream's events and delivered after each revision.
 *
 * - It starts watching from etcd's current revision, then reads (`range`) and delivers that state, then every
 *   change after the read. Watching first matters for latency: etcd sends a watch that starts at its current
 *   revision each change at once ("synced"), while one that starts at an older revision (a read, then a watch from
 *   the read's revision + 1, with someone else's write in between) waits for etcd's catch-up loop, which runs
 *   every 100 ms. During a rebalance other members write all the time, so that cost up to 100 ms per handoff.
 * - A broken stream resumes from the last revision seen (events' mod revisions and progress notifications), so
 *   nothing in between is missed.
 * - If that revision has been compacted meanwhile, etcd cancels the watch with `compact_revision`: the watch
 *   reads again and watches again from the new read, delivering the state it finds.
 * - `rearm()` (after a reconnection or a new lease) re-opens the stream from the last revision and delivers the
 *   current state again once etcd confirms the watch, as the AllocatorBackend contract asks.
 *
 * Why not etcd3's Watcher: it moves its resume revision to the header revision of the `created` response, so a
 * stream that breaks while replaying history skips events; its compaction handling ends the watcher; and some of
 * its internal consistency checks throw from stream callbacks, which would crash the process.
 */
export class KeyWatch {
  private readonly kvs = new Map<string, IKeyValue>();
  /** The last store revision whose changes are all applied to `kvs`; undefined until the first read. */
  private revision: bigint | undefined;
  private stream: IDuplexStream<IWatchRequest, IWatchResponse> | undefined;
  private watchId: string | undefined;
  /** Bumped at each (re)start, so that late callbacks of an abandoned stream or read are ignored. */
  private generation = 0;
  private stopped = false;
  private redeliverOnCreate = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay = RETRY_MIN_MS;
  /** While a fresh watch waits for its read: the responses that arrived meanwhile, applied after the read. */
  private listing: IWatchResponse[] | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private checking = false;
  /** The revision of a check's read that showed a state this watch had not delivered yet. */
  private behindRead: bigint | undefined;

  constructor(
    private readonly host: WatchHost,
    private readonly options: KeyWatchOptions,
  ) {}

  /** Starts watching, reads the current state and delivers it. */
  start(): void {
    this.relist();
    const every = this.options.checkEveryMs;
    if (every !== undefined) {
      this.checkTimer = setInterval(() => void this.check(), every);
      this.checkTimer.unref();
    }
  }

  /**
   * A watch can stop delivering while its stream stays open: etcd members that restart, restore a snapshot or lose
   * their quorum have had watch bugs (etcd-io/etcd#15220, #19487, #20221), and the soak once saw two members keep
   * an old allocation for 35 s after a quorum loss, until their next session re-created their watches. So the watch
   * compares itself with a read now and then (a keys-only count, filtered by mod revision: no values), one small
   * read per watch and interval. A change the watch has not delivered is normal for a moment (the event may be on
   * its way); still lacking at the next check, with the watch not moved at all, it is not: the watch is re-created
   * from a fresh read.
   */
  private async check(): Promise<void> {
    if (this.stopped || this.checking || this.revision === undefined || this.listing) return;
    this.checking = true;
    const generation = this.generation;
    const at = this.revision;
    let read: { count: number; changed: number; revision: bigint };
    try {
      read = await this.host.probe(this.options.key, this.options.rangeEnd, this.options.location, at);
    } catch (error) {
      // Outages are the keepalive's and the stream's business; the next check reads again.
      trace('watch %s: check failed: %s', this.options.location, error instanceof Error ? error.message : error);
      return;
    } finally {
      this.checking = false;
    }
    if (this.stopped || generation !== this.generation || this.revision === undefined || this.listing) return;
    // What the watch lacks: keys changed after the revision it had when the read went out, or a different count.
    const lacking = read.changed > 0 || read.count !== this.kvs.size;
    if (!lacking || this.revision >= read.revision) {
      this.behindRead = undefined;
      return;
    }
    // First sight: the events may be on their way. Stuck only if still short of that read's revision a check later.
    if (this.behindRead === undefined || this.revision >= this.behindRead) {
      trace(
        'watch %s: at %s, a read at %s shows %d keys changed after it and %d keys (the watch holds %d)',
        this.options.location,
        this.revision,
        read.revision,
        read.changed,
        read.count,
        this.kvs.size,
      );
      this.behindRead = read.revision;
      return;
    }
    trace(
      'watch %s: stuck at revision %s, a read at %s showed changes it has not delivered; re-creating it',
      this.options.location,
      this.revision,
      this.behindRead,
    );
    this.behindRead = undefined;
    this.relist();
  }

  /** Re-opens the stream from the last revision seen and delivers the current state again. */
  rearm(): void {
    if (this.stopped) return;
    trace('watch %s: rearm at revision %s', this.options.location, this.revision);
    if (this.revision === undefined) {
      this.relist();
      return;
    }
    this.redeliverOnCreate = true;
    void this.watchFrom(this.revision + 1n);
  }

  /** Stops for good. Idempotent. */
  stop(): void {
    this.stopped = true;
    this.generation++;
    clearTimeout(this.retryTimer);
    clearInterval(this.checkTimer);
    this.closeStream();
  }

  /** Watches from the current revision, then reads the state (see the class comment); used at start and after a compaction. */
  private relist(): void {
    void this.watchFrom(undefined);
  }

  /** The read that follows a fresh watch's creation: delivers the state read, then what the watch sent meanwhile. */
  private async readAfterCreate(generation: number): Promise<void> {
    let read: { kvs: IKeyValue[]; revision: bigint };
    try {
      read = await this.host.range(this.options.key, this.options.rangeEnd, this.options.location);
    } catch (error) {
      if (generation !== this.generation) return;
      this.failed(toBackendError(error, 'watch (read)', this.options.location), () => this.relist());
      return;
    }
    if (generation !== this.generation || this.stopped) return;
    trace(
      'watch %s: #%d read %d keys at revision %s',
      this.options.location,
      generation,
      read.kvs.length,
      read.revision,
    );
    const buffered = this.listing ?? [];
    this.listing = undefined;
    this.kvs.clear();
    for (const kv of read.kvs) this.kvs.set(kv.key.toString(), kv);
    this.revision = read.revision;
    this.deliver();
    // Changes up to the read's revision are in the read; onResponse skips them.
    for (const response of buffered) {
      if (generation !== this.generation) return;
      this.onResponse(response);
    }
  }

  /**
   * Opens a stream and creates the watch: from `startRevision` to resume, or from the current revision followed by a
   * read (`undefined`).
   */
  private async watchFrom(startRevision: bigint | undefined, generation = ++this.generation): Promise<void> {
    if (this.stopped) return;
    trace('watch %s: open #%d from %s', this.options.location, generation, startRevision ?? 'now, then read');
    clearTimeout(this.retryTimer);
    this.closeStream();
    this.listing = startRevision === undefined ? [] : undefined;
    // The read after a fresh watch delivers the state anyway.
    if (startRevision === undefined) this.redeliverOnCreate = false;
    let stream: IDuplexStream<IWatchRequest, IWatchResponse>;
    try {
      stream = await this.host.openStream();
    } catch (error) {
      if (generation !== this.generation) return;
      this.failed(toBackendError(error, 'watch', this.options.location), () =>
        startRevision === undefined ? this.relist() : this.resume(),
      );
      return;
    }
    if (generation !== this.generation || this.stopped) {
      endStream(stream);
      return;
    }
    this.stream = stream;
    this.watchId = undefined;
    // A broken stream may report both `error` and `end`: only the first counts.
    const current = () => generation === this.generation && this.stream === stream;
    stream.on('data', (response: IWatchResponse) => {
      if (current()) this.onResponse(response);
    });
    stream.on('error', (error: Error) => {
      if (current()) this.onBroken(error);
    });
    stream.on('end', () => {
      if (current()) this.onBroken(new EtcdWatchStreamEnded());
    });
    stream.write({
      create_request: {
        key: this.options.key,
        range_end: this.options.rangeEnd,
        ...(startRevision !== undefined ? { start_revision: startRevision.toString() } : {}),
        progress_notify: true,
      },
    });
  }

  /** Re-opens the stream where the last one stopped (or reads again if nothing was read yet). */
  private resume(): void {
    if (this.revision === undefined) this.relist();
    else void this.watchFrom(this.revision + 1n);
  }

  private onResponse(response: IWatchResponse): void {
    if (this.watchId !== undefined && response.watch_id !== this.watchId) return;
    const compactRevision = BigInt(response.compact_revision || '0');
    if (compactRevision > 0n) {
      // The revision we asked for is gone: the history in between cannot be replayed, so read the state again.
      this.relist();
      return;
    }
    if (response.canceled) {
      const reason = response.cancel_reason || 'canceled by the server';
      this.failed(toBackendError(new Error(reason), 'watch', this.options.location), () => void this.resume());
      return;
    }
    if (response.created) {
      trace(
        'watch %s: #%d created (id %s, header %s)',
        this.options.location,
        this.generation,
        response.watch_id,
        response.header.revision,
      );
      this.watchId = response.watch_id;
      this.retryDelay = RETRY_MIN_MS;
      if (this.listing) {
        void this.readAfterCreate(this.generation);
        return;
      }
      if (this.redeliverOnCreate) {
        this.redeliverOnCreate = false;
        this.deliver();
      }
      return;
    }
    if (this.listing) {
      this.listing.push(response);
      return;
    }
    const events = response.events ?? [];
    if (events.length === 0) {
      // A progress notification: every change up to the header revision has been sent.
      const progress = BigInt(response.header.revision);
      trace('watch %s: progress %s (at %s)', this.options.location, progress, this.revision);
      if (this.revision === undefined || progress > this.revision) this.revision = progress;
      return;
    }
    trace(
      'watch %s: %d events, revisions %s..%s (at %s)',
      this.options.location,
      events.length,
      events[0]!.kv.mod_revision,
      events[events.length - 1]!.kv.mod_revision,
      this.revision,
    );
    const generation = this.generation;
    let pending: bigint | undefined;
    for (const event of events) {
      const revision = BigInt(event.kv.mod_revision);
      // Already in the state (a change that the read after a fresh watch's creation included).
      if (this.revision !== undefined && revision <= this.revision) continue;
      if (pending !== undefined && revision !== pending) {
        // Everything of revision `pending` is applied: deliver that state before the next one.
        this.revision = pending;
        this.deliver();
        if (generation !== this.generation) return;
      }
      pending = revision;
      const key = event.kv.key.toString();
      if (event.type === 'Delete') this.kvs.delete(key);
      else this.kvs.set(key, event.kv);
    }
    if (pending !== undefined) {
      this.revision = pending;
      this.deliver();
    }
  }

  private onBroken(error: Error): void {
    this.closeStream();
    this.failed(toBackendError(error, 'watch', this.options.location), () => void this.resume());
  }

  /** Schedules `retry` with backoff; only errors that a retry cannot fix are reported. */
  private failed(error: BackendError, retry: () => void): void {
    if (this.stopped) return;
    trace(
      'watch %s: #%d failed, retry in %d ms: %s',
      this.options.location,
      this.generation,
      this.retryDelay,
      error.message,
    );
    clearTimeout(this.retryTimer);
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
    if (error.code === 'ERR_BACKEND_AUTH' && /invalid auth token/.test(error.message)) {
      // A stale token, not a refusal: get a new one, then retry. Only a refused renewal is reported.
      const generation = this.generation;
      this.host.refreshAuth().then(
        () => {
          if (!this.stopped && generation === this.generation) this.retryTimer = setTimeout(retry, 0);
        },
        (refreshError: unknown) => {
          if (this.stopped || generation !== this.generation) return;
          const mapped = toBackendError(refreshError, 'watch (auth)', this.options.location);
          if (!mapped.retriable) this.host.reportError(mapped);
          this.retryTimer = setTimeout(retry, delay);
        },
      );
      return;
    }
    // Outages are reported once, by the backend's `disconnected`; a watch only reports what will not heal itself.
    if (!error.retriable) this.host.reportError(error);
    this.retryTimer = setTimeout(retry, delay);
  }

  private deliver(): void {
    if (this.stopped) return;
    const kvs = [...this.kvs.values()].sort((a, b) => Buffer.compare(a.key, b.key));
    this.options.deliver(kvs);
  }

  private closeStream(): void {
    const stream = this.stream;
    this.stream = undefined;
    this.watchId = undefined;
    if (stream) endStream(stream);
  }
}

/**
 * Ends a stream quietly. `end()` first makes the stream non-writable, so that etcd3 does not count the
 * cancellation below as a host failure (which would reset every connection to that host).
 */
export function endStream(stream: IDuplexStream<unknown, unknown>): void {
  stream.on('error', () => undefined);
  try {
    stream.end();
    stream.cancel();
  } catch {
    // Already closed.
  }
}
