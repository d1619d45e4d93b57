import { debuglog } from 'node:util';
import { performance } from 'node:perf_hooks';
import type {
  AllocatorBackend,
  AllocatorBackendEvents,
  BackendErrorCode,
  BackendSupports,
  Claim,
  ClaimListener,
  Member,
  MemberInfo,
  MembersListener,
  RecordListener,
  RecordName,
  RecordVersion,
  Unsubscribe,
  VersionedRecord,
} from '@kiel/consumer';
import { AllocatorBackendBase, parseMemberEntry } from '@kiel/consumer';
import { ConsecutiveBreaker, circuitBreaker, handleWhen, noop, retry } from 'cockatiel';
import type { IPolicy } from 'cockatiel';
import { Etcd3, EtcdLeaseInvalidError, GRPCUnavailableError } from 'etcd3';
import type {
  ICompare,
  IDuplexStream,
  IKeyValue,
  ILeaseKeepAliveRequest,
  ILeaseKeepAliveResponse,
  IOptions,
  IRequestOp,
  ITxnResponse,
} from 'etcd3';
import { EtcdBackendError, toBackendError, type EtcdBackendErrorOptions } from './errors';
import { KeyLayout, prefixRangeEnd } from './keys';
import { resolveOptions } from './options';
import type { EtcdBackendOptions, ResolvedEtcdBackendOptions } from './options';
import { KeyWatch, endStream } from './watch';

/** The lease this instance holds, with our own record of its liveness. */
interface Session {
  /** The lease id in decimal, as etcd's API takes it. */
  readonly id: string;
  readonly ttlMs: number;
  /** `performance.now()` when the last successful keepalive (or the grant) was answered: our expiry clock. */
  renewedAt: number;
  /** The keepalive stream and the send times of its unanswered requests, oldest first. */
  stream?: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;
  pending: number[];
  timer?: NodeJS.Timeout;
  /** A keepalive stream failed: the next attempt, sooner than the next tick. */
  retryTimer?: NodeJS.Timeout;
  /** One per unanswered keepalive: fires `disconnected` if the answer is late. */
  readonly replyTimers: Set<NodeJS.Timeout>;
}

/** A trace of the session's life on stderr, with NODE_DEBUG=kiel-etcd. */
const trace = debuglog('kiel-etcd');

// How long close() waits for the lease revoke, at most: close must be prompt even when etcd is not.
const CLOSE_REVOKE_TIMEOUT_MS = 2_000;
// Reconnect quickly after an etcd restart (gRPC's default backoff grows to two minutes) and ping the connection so
// that a silently dead one is noticed; etcd refuses pings more often than every 5 s by default.
const GRPC_OPTIONS = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.min_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1_000,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
};

/**
 * The etcd allocator backend: members, records, claims and watches of kiel consumer groups, on etcd v3 with the
 * `etcd3` client. One lease per session, kept alive by this class on its own clock; membership entries and claims
 * are keys bound to that lease.
 *
 * Swapping it for the ZooKeeper backend is a one-line change: both take `hosts`, a session length, a `prefix`,
 * `auth`, `connectTimeout` and `operationTimeout`, and behave the same under the AllocatorBackend contract.
 *
 * @example
 * ```ts
 * import { EtcdBackend } from '@kiel/allocator-etcd';
 *
 * const backend = new EtcdBackend({ hosts: '127.0.0.1:2379', ttl: 5 });
 * backend.on('expired', () => console.log('lease lost: stop processing'));
 * await backend.connect();
 * const me = await backend.join('orders-group', { id: 'host-1:42:a1', host: 'host-1', pid: 42 });
 * console.log('joined with order', me.order);
 * const stop = backend.watchMembers('orders-group', (members) => console.log(members.map((m) => m.info.id)));
 * // ...
 * stop();
 * await backend.close();
 * ```
 */
export class EtcdBackend extends AllocatorBackendBase implements AllocatorBackend {
  /** `etcd`, for logs and errors. */
  readonly name = 'etcd';
  /** Weights are stored in member entries; etcd users and roles provide auth; a compaction can coalesce history. */
  readonly supports: BackendSupports = { orderedWatchHistory: false, weights: true, auth: true };

  private readonly options: ResolvedEtcdBackendOptions;
  private readonly keys: KeyLayout;
  private readonly watches = new Set<KeyWatch>();
  private client: Etcd3 | undefined;
  private session: Session | undefined;
  /**
   * Leases we gave up on by our own clock (id -> `performance.now()` when), in case etcd still holds them: revoked
   * once a connect() has a new lease, and retried until etcd confirms (see {@link revokeAbandoned}).
   */
  private readonly abandonedLeases = new Map<string, number>();
  private abandonedTimer: NodeJS.Timeout | undefined;
  private connecting: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private grantedTimeoutMs: number;

  /** Validates `options` (throwing `ERR_INVALID_CONFIG`); connects only on {@link connect}. */
  constructor(options: EtcdBackendOptions) {
    super();
    this.options = resolveOptions(options);
    this.keys = new KeyLayout(this.options.prefix);
    this.grantedTimeoutMs = this.options.ttl * 1000;
  }

  /** The granted lease TTL in milliseconds (the requested one before the first grant). */
  get sessionTimeout(): number {
    return this.grantedTimeoutMs;
  }

  /** The current lease id (decimal, as etcd's API takes it), or undefined without a live lease. */
  get sessionId(): string | undefined {
    return this.session?.id;
  }

  /** The key prefix in use, ending with `/`. */
  get prefix(): string {
    return this.options.prefix;
  }

  /** Emits an event (see the base class), traced under NODE_DEBUG=kiel-etcd. */
  protected override emit<E extends keyof AllocatorBackendEvents>(event: E, ...args: AllocatorBackendEvents[E]): void {
    trace('backend: %s %j', event, args[0]);
    super.emit(event, ...args);
  }

  /** Every error this backend raises is an {@link EtcdBackendError}. */
  protected override error(
    code: BackendErrorCode,
    message: string,
    options: EtcdBackendErrorOptions = {},
  ): EtcdBackendError {
    return new EtcdBackendError(code, message, options);
  }

  // ------------------------------------------------------------------------------------------------------------
  // Lifecycle.

  /**
   * Checks access under the prefix and grants a lease. Idempotent while connected; shared by concurrent callers;
   * after `expired`, grants a new lease. While `disconnected`, waits for the keepalive loop's verdict first.
   */
  async connect(): Promise<void> {
    for (;;) {
      if (this.currentState === 'closed') throw closedError('connect');
      if (this.currentState === 'connected') return;
      if (this.connecting) return this.connecting;
      if (this.currentState !== 'disconnected') break;
      // The lease may still be alive: wait for the keepalive loop to say whether it is, then act on the answer.
      await this.waitWhileDisconnected();
    }
    const connecting = this.openSession().finally(() => {
      if (this.connecting === connecting) this.connecting = undefined;
    });
    this.connecting = connecting;
    return connecting;
  }

  /** Stops the keepalives and the watches, revokes the lease (bounded to 2 s) and closes the client. */
  async close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async openSession(): Promise<void> {
    const previous = this.currentState;
    this.currentState = 'connecting';
    const client = this.etcd('connect');
    // Our clock starts when the grant was sent (the earliest the lease can have started), not when connect() began:
    // a connect that waited for etcd to come back would otherwise start on a stale clock, and the member fence itself
    // right after it joined.
    let sentAt = performance.now();
    const { connectTimeout, hosts, prefix, ttl } = this.options;
    const deadline = Date.now() + connectTimeout;
    let granted: { ID: string; TTL: string };
    try {
      granted = await bounded(
        (async () => {
          // A read under the prefix first: it proves the servers answer and that our credentials may read our
          // keys. etcd 3.4 grants leases to any client, so without it, bad credentials would surface only at the
          // first join or claim.
          const key = Buffer.from(prefix);
          await client.kv.range({ key, range_end: prefixRangeEnd(key), limit: 1, keys_only: true }, { deadline });
          sentAt = performance.now();
          return client.leaseClient.leaseGrant({ TTL: ttl }, { deadline });
        })(),
        connectTimeout,
        () =>
          new EtcdBackendError(
            'ERR_BACKEND_UNAVAILABLE',
            `etcd connect: no answer from ${hosts.join(', ')} within ${connectTimeout} ms`,
          ),
      );
    } catch (error) {
      if (this.isClosed()) throw closedError('connect');
      this.currentState = previous === 'expired' ? 'expired' : 'idle';
      const mapped = toBackendError(error, 'connect');
      // The contract: servers that cannot be reached within the connect timeout are unavailable, not slow.
      if (mapped.code === 'ERR_BACKEND_TIMEOUT') {
        throw new EtcdBackendError('ERR_BACKEND_UNAVAILABLE', mapped.message, { cause: error });
      }
      throw mapped;
    }
    const grantedAt = performance.now();
    // Before `connected`: the member joins again next, and the group's leader should find the old entries gone.
    await this.revokeAbandoned();
    if (this.isClosed()) {
      void client.leaseClient.leaseRevoke({ ID: granted.ID }).catch(() => undefined);
      throw closedError('connect');
    }
    const ttlMs = Number(granted.TTL) * 1000;
    const session: Session = { id: granted.ID, ttlMs, renewedAt: grantedAt, pending: [], replyTimers: new Set() };
    this.session = session;
    this.grantedTimeoutMs = ttlMs;
    this.contactAt = sentAt;
    this.currentState = 'connected';
    this.startKeepAlive(session);
    this.emit('connected', { sessionId: session.id, newSession: true });
    for (const watch of this.watches) watch.rearm();
  }

  /**
   * Revokes the leases our clock gave up on. etcd may still hold one well after its TTL (a new etcd leader extends
   * every lease by a TTL), and with it the old session's member entry and claims: the group would wait for it. Each
   * is forgotten once revoked or once etcd says it is gone; a failure (etcd still settling after an outage: `leader
   * changed`) is retried every 500 ms, for up to 10 TTLs. Never throws.
   */
  private async revokeAbandoned(): Promise<void> {
    clearTimeout(this.abandonedTimer);
    this.abandonedTimer = undefined;
    if (this.abandonedLeases.size === 0 || this.currentState === 'closed') return;
    const client = this.etcd('revoke');
    const timeout = this.options.operationTimeout;
    for (const [id, since] of [...this.abandonedLeases]) {
      try {
        await bounded(
          client.leaseClient.leaseRevoke({ ID: id }, { deadline: Date.now() + timeout }),
          timeout,
          () => new EtcdBackendError('ERR_BACKEND_TIMEOUT', 'etcd: revoking an abandoned lease took too long'),
        );
        this.abandonedLeases.delete(id);
      } catch (error) {
        const gone = error instanceof EtcdLeaseInvalidError;
        if (gone || performance.now() - since > 10 * this.options.ttl * 1000) this.abandonedLeases.delete(id);
      }
    }
    if (this.abandonedLeases.size > 0 && !this.isClosed()) {
      this.abandonedTimer = setTimeout(() => void this.revokeAbandoned(), 500);
      this.abandonedTimer.unref();
    }
  }

  /** A method rather than a comparison, so that TypeScript does not narrow the state across awaits. */
  private isClosed(): boolean {
    return this.currentState === 'closed';
  }

  private waitWhileDisconnected(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.events.off('connected', done);
        this.events.off('expired', done);
        this.events.off('closed', done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.events.off('connected', done);
        this.events.off('expired', done);
        this.events.off('closed', done);
        reject(
          new EtcdBackendError(
            'ERR_BACKEND_UNAVAILABLE',
            `etcd connect: the connection did not come back within ${this.options.connectTimeout} ms`,
          ),
        );
      }, this.options.connectTimeout);
      this.events.on('connected', done);
      this.events.on('expired', done);
      this.events.on('closed', done);
    });
  }

  private async shutdown(): Promise<void> {
    const session = this.session;
    this.currentState = 'closed';
    this.session = undefined;
    clearTimeout(this.abandonedTimer);
    for (const watch of this.watches) watch.stop();
    this.watches.clear();
    if (session) this.stopKeepAlive(session);
    this.events.emit('closed');
    const client = this.client;
    if (!client) return;
    if (session) {
      // Revoking deletes our member entries and claims at once, instead of when the lease runs out.
      await bounded(
        client.leaseClient.leaseRevoke({ ID: session.id }, { deadline: Date.now() + CLOSE_REVOKE_TIMEOUT_MS }),
        CLOSE_REVOKE_TIMEOUT_MS,
        () => new EtcdBackendError('ERR_BACKEND_TIMEOUT', 'etcd close: the lease revoke took too long'),
      ).catch(() => undefined);
    }
    client.close();
  }

  // ------------------------------------------------------------------------------------------------------------
  // The keepalive loop and our own clock.

  private startKeepAlive(session: Session): void {
    const interval = keepAliveInterval(session);
    session.timer = setInterval(() => this.keepAliveTick(session, interval), interval);
  }

  private stopKeepAlive(session: Session): void {
    clearInterval(session.timer);
    session.timer = undefined;
    clearTimeout(session.retryTimer);
    session.retryTimer = undefined;
    for (const timer of session.replyTimers) clearTimeout(timer);
    session.replyTimers.clear();
    if (session.stream) endStream(session.stream);
    session.stream = undefined;
    session.pending = [];
  }

  /**
   * Runs every TTL/4. etcd3's own keepalive loop reports a lost lease only about 2 x TTL after the last good
   * keepalive, and never notices a frozen server; this one decides from its own clock:
   * - a keepalive unanswered within 3/4 of an interval means the connection is in doubt: `disconnected`;
   * - no successful keepalive for the whole TTL means etcd has expired the lease by now: `expired`.
   */
  private keepAliveTick(session: Session, interval: number): void {
    if (this.session !== session) return;
    const now = performance.now();
    if (now - session.renewedAt >= session.ttlMs) {
      const silence = Math.round(now - session.renewedAt);
      this.loseSession(session, `no successful keepalive for ${silence} ms (TTL ${session.ttlMs} ms)`, {
        maybeAlive: true,
      });
      return;
    }
    // A stream unanswered for two intervals is replaced, in case its connection died without a reset.
    const oldest = session.pending[0];
    if (oldest !== undefined && now - oldest >= 2 * interval && session.stream) {
      endStream(session.stream);
      session.stream = undefined;
      session.pending = [];
    }
    this.sendKeepAlive(session);
  }

  private sendKeepAlive(session: Session): void {
    if (!session.stream) {
      void this.openKeepAliveStream(session);
      return;
    }
    const sentAt = performance.now();
    session.pending.push(sentAt);
    const replyTimeout = Math.floor((keepAliveInterval(session) * 3) / 4);
    const timer = setTimeout(() => {
      session.replyTimers.delete(timer);
      // Answers come in order, so this one is still unanswered if an older-or-equal send time is pending.
      const oldest = session.pending[0];
      if (this.session === session && oldest !== undefined && oldest <= sentAt) {
        this.markDisconnected(`no keepalive answer from etcd within ${replyTimeout} ms`);
      }
    }, replyTimeout);
    session.replyTimers.add(timer);
    try {
      session.stream.write({ ID: session.id });
    } catch (error) {
      this.onKeepAliveFailure(session, session.stream, error);
    }
  }

  private async openKeepAliveStream(session: Session): Promise<void> {
    let stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;
    try {
      stream = await this.etcd('keepalive').leaseClient.leaseKeepAlive();
    } catch (error) {
      this.onKeepAliveFailure(session, undefined, error);
      return;
    }
    if (this.session !== session || session.stream) {
      endStream(stream);
      return;
    }
    session.stream = stream;
    session.pending = [];
    stream.on('data', (response) => this.onKeepAliveResponse(session, stream, response));
    stream.on('error', (error) => this.onKeepAliveFailure(session, stream, error));
    stream.on('end', () =>
      this.onKeepAliveFailure(session, stream, new GRPCUnavailableError('the keepalive stream ended')),
    );
    this.sendKeepAlive(session);
  }

  private onKeepAliveResponse(
    session: Session,
    stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>,
    response: ILeaseKeepAliveResponse,
  ): void {
    if (this.session !== session || session.stream !== stream) return;
    const sentAt = session.pending.shift() ?? performance.now();
    if (Number(response.TTL) <= 0) {
      this.loseSession(session, 'etcd reports the lease expired or revoked', { maybeAlive: false });
      return;
    }
    session.renewedAt = performance.now();
    // The send time, not the receive time: the server renewed the lease somewhere in between, and fencing must
    // count from the earliest moment it could have.
    this.contactAt = Math.max(this.contactAt, sentAt);
    if (this.currentState === 'disconnected') {
      this.currentState = 'connected';
      this.emit('connected', { sessionId: session.id, newSession: false });
      for (const watch of this.watches) watch.rearm();
    }
  }

  private onKeepAliveFailure(
    session: Session,
    stream: IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse> | undefined,
    error: unknown,
  ): void {
    if (this.session !== session) return;
    if (stream !== undefined && session.stream !== stream) return;
    if (session.stream) endStream(session.stream);
    session.stream = undefined;
    session.pending = [];
    const mapped = toBackendError(error, 'keepalive');
    if (mapped.code === 'ERR_SESSION_EXPIRED') {
      this.loseSession(session, mapped.message, { maybeAlive: false });
      return;
    }
    this.markDisconnected(mapped.message);
    // Try a new stream soon rather than at the next tick (TTL/4 away): after a server dies, the client's pool moves
    // to a live one within a few attempts (its circuit breaker skips a host after three failures), and at one attempt
    // per tick that could take most of the TTL, as it did once in CI when the etcd leader was killed.
    if (session.retryTimer === undefined) {
      session.retryTimer = setTimeout(() => {
        session.retryTimer = undefined;
        if (this.session === session && !session.stream) this.sendKeepAlive(session);
      }, keepAliveRetryDelay(session));
    }
  }

  private markDisconnected(reason: string): void {
    if (this.currentState !== 'connected') return;
    this.currentState = 'disconnected';
    this.emit('disconnected', { reason });
  }

  /** The lease is gone (or must be treated as gone): everything bound to it is lost. */
  private loseSession(session: Session, reason: string, { maybeAlive }: { maybeAlive: boolean }): void {
    if (this.session !== session) return;
    this.session = undefined;
    this.stopKeepAlive(session);
    if (maybeAlive) this.abandonedLeases.set(session.id, performance.now());
    if (this.currentState === 'closed') return;
    if (this.currentState === 'connected') {
      // Never go straight from connected to expired without saying contact was lost first.
      this.currentState = 'disconnected';
      this.emit('disconnected', { reason });
    }
    this.currentState = 'expired';
    this.emit('expired', { sessionId: session.id });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Membership.

  /** Creates `members/<lease id>` bound to the lease, in a transaction that returns the entry if it exists. */
  async join(group: string, info: MemberInfo): Promise<Member> {
    this.checkGroup(group);
    const session = this.requireSession('join');
    const key = this.keys.member(group, session.id);
    const keyBuffer = Buffer.from(key);
    const value = Buffer.from(JSON.stringify(info));
    const response = await this.txn('join', key, {
      compare: [{ key: keyBuffer, target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [{ request_put: { key: keyBuffer, value, lease: session.id } }],
      failure: [{ request_range: { key: keyBuffer } }],
    });
    if (response.succeeded) return { info, order: Number(response.header.revision), location: key };
    // A retry after a lost reply, or a second join of this session: the entry exists already.
    const existing = response.responses[0]?.response_range?.kvs?.[0];
    if (existing && existing.value.equals(value)) {
      return { info, order: Number(existing.create_revision), location: key };
    }
    // Same session, other content: update it in place, keeping the member's position.
    await this.op('join', key, (client, deadline) =>
      client.kv.put({ key: keyBuffer, value, lease: session.id }, { deadline }),
    );
    const order = existing ? Number(existing.create_revision) : Number(response.header.revision);
    return { info, order, location: key };
  }

  /** Deletes this lease's member entry, only if the key is still bound to our lease. */
  async leave(group: string): Promise<void> {
    this.checkGroup(group);
    const session = this.requireSession('leave');
    const key = this.keys.member(group, session.id);
    await this.deleteIfOurs('leave', key, session);
  }

  /** Lists the member entries, sorted by create revision; malformed ones are reported and left out. */
  async members(group: string): Promise<readonly Member[]> {
    this.checkGroup(group);
    const prefix = this.keys.membersPrefix(group);
    const kvs = await this.rangeOp('members', prefix, true);
    return this.toMembers(kvs);
  }

  /** Watches the members prefix: resumes from the last revision seen, reads again after a compaction. */
  watchMembers(group: string, listener: MembersListener): Unsubscribe {
    this.checkGroup(group);
    const prefix = this.keys.membersPrefix(group);
    const reported = new Set<string>();
    return this.watch(prefix, true, (kvs) => {
      const members = this.toMembers(kvs, reported);
      this.deliver(prefix, () => listener(members));
    });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Records.

  /** Reads a record; its version is the key's mod revision. */
  async readRecord(group: string, name: RecordName): Promise<VersionedRecord | null> {
    this.checkGroup(group);
    const key = this.keys.record(group, name);
    const [kv] = await this.rangeOp('readRecord', key, false);
    return kv ? toRecord(kv, key) : null;
  }

  /** Compare-and-set in one transaction on the mod revision (create revision 0 for `expected === null`). */
  async writeRecord(
    group: string,
    name: RecordName,
    value: string,
    expected: RecordVersion | null,
  ): Promise<RecordVersion | null> {
    this.checkGroup(group);
    this.checkValue(value, name);
    const key = this.keys.record(group, name);
    this.etcd('writeRecord');
    const keyBuffer = Buffer.from(key);
    let compare: ICompare;
    if (expected === null) {
      compare = { key: keyBuffer, target: 'Create', result: 'Equal', create_revision: 0 };
    } else {
      // Our versions are mod revisions, always positive; anything else cannot match (and `0` would match a
      // missing key, turning a compare-and-set into a create).
      if (typeof expected !== 'string' || !/^[1-9][0-9]{0,18}$/.test(expected)) return null;
      compare = { key: keyBuffer, target: 'Mod', result: 'Equal', mod_revision: expected };
    }
    const response = await this.txn('writeRecord', key, {
      compare: [compare],
      success: [{ request_put: { key: keyBuffer, value: Buffer.from(value) } }],
    });
    return response.succeeded ? response.header.revision : null;
  }

  /** Watches one record key. */
  watchRecord(group: string, name: RecordName, listener: RecordListener): Unsubscribe {
    this.checkGroup(group);
    const key = this.keys.record(group, name);
    return this.watch(key, false, (kvs) => {
      const record = kvs.length > 0 ? toRecord(kvs[0], key) : null;
      this.deliver(key, () => listener(record));
    });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Claims.

  /** Creates `owners/<partition>` bound to our lease if absent; true also when it already carries our lease. */
  async claim(group: string, partition: string, value: string): Promise<boolean> {
    this.checkGroup(group);
    this.checkPartition(partition);
    this.checkValue(value, partition);
    const session = this.requireSession('claim');
    const key = this.keys.claim(group, partition);
    const keyBuffer = Buffer.from(key);
    const response = await this.txn('claim', key, {
      compare: [{ key: keyBuffer, target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [{ request_put: { key: keyBuffer, value: Buffer.from(value), lease: session.id } }],
      failure: [{ request_range: { key: keyBuffer } }],
    });
    if (response.succeeded) return true;
    // Held already: by us when this is a retry of a create whose reply was lost.
    const holder = response.responses[0]?.response_range?.kvs?.[0];
    return holder !== undefined && holder.lease === session.id;
  }

  /** Deletes the claim only if the key carries our lease. */
  async release(group: string, partition: string): Promise<void> {
    this.checkGroup(group);
    this.checkPartition(partition);
    const session = this.requireSession('release');
    const key = this.keys.claim(group, partition);
    await this.deleteIfOurs('release', key, session);
  }

  /** Reads one claim; `mine` when the key carries our current lease. */
  async readClaim(group: string, partition: string): Promise<Claim | null> {
    this.checkGroup(group);
    this.checkPartition(partition);
    const key = this.keys.claim(group, partition);
    const [kv] = await this.rangeOp('readClaim', key, false);
    return kv ? this.toClaim(kv, key) : null;
  }

  /** Lists every claim of the group, keyed by partition id. */
  async claims(group: string): Promise<ReadonlyMap<string, Claim>> {
    this.checkGroup(group);
    const prefix = this.keys.ownersPrefix(group);
    const kvs = await this.rangeOp('claims', prefix, true);
    const claims = new Map<string, Claim>();
    for (const kv of kvs) {
      const key = kv.key.toString();
      claims.set(this.keys.partitionOf(prefix, key), this.toClaim(kv, key));
    }
    return claims;
  }

  /** Watches one claim key; `mine` is computed against the lease current at each delivery. */
  watchClaim(group: string, partition: string, listener: ClaimListener): Unsubscribe {
    this.checkGroup(group);
    this.checkPartition(partition);
    const key = this.keys.claim(group, partition);
    return this.watch(key, false, (kvs) => {
      const claim = kvs.length > 0 ? this.toClaim(kvs[0], key) : null;
      this.deliver(key, () => listener(claim));
    });
  }

  // ------------------------------------------------------------------------------------------------------------
  // Markers.

  /** Puts (or deletes) `markers/<partition>`, without a lease: it outlives the session that wrote it. */
  async writeMarker(group: string, partition: string, value: string | null): Promise<void> {
    this.checkGroup(group);
    this.checkPartition(partition);
    if (value !== null) this.checkValue(value, partition);
    const key = this.keys.marker(group, partition);
    const keyBuffer = Buffer.from(key);
    await this.txn('writeMarker', key, {
      compare: [],
      success: [
        value === null
          ? { request_delete_range: { key: keyBuffer } }
          : { request_put: { key: keyBuffer, value: Buffer.from(value) } },
      ],
    });
  }

  /** Reads one marker. */
  async readMarker(group: string, partition: string): Promise<string | null> {
    this.checkGroup(group);
    this.checkPartition(partition);
    const key = this.keys.marker(group, partition);
    const [kv] = await this.rangeOp('readMarker', key, false);
    return kv ? kv.value.toString() : null;
  }

  /** Lists every marker of the group, keyed by partition id. */
  async markers(group: string): Promise<ReadonlyMap<string, string>> {
    this.checkGroup(group);
    const prefix = this.keys.markersPrefix(group);
    const kvs = await this.rangeOp('markers', prefix, true);
    const markers = new Map<string, string>();
    for (const kv of kvs) markers.set(this.keys.partitionOf(prefix, kv.key.toString()), kv.value.toString());
    return new Map([...markers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  // ------------------------------------------------------------------------------------------------------------
  // Plumbing.

  /** The etcd3 client, made on first use; `ERR_BACKEND_CLOSED` after close(). */
  private etcd(operation: string): Etcd3 {
    if (this.currentState === 'closed') throw closedError(operation);
    this.client ??= new Etcd3(this.clientOptions());
    return this.client;
  }

  private clientOptions(): IOptions {
    const { hosts, auth, tls, operationTimeout, connectTimeout } = this.options;
    const options: IOptions = {
      hosts: [...hosts],
      // Every unary call gets a deadline; streams are bounded by the keepalive clock and the watches' own logic.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + operationTimeout }),
      grpcOptions: GRPC_OPTIONS,
      faultHandling: faultHandling(hosts.length),
    };
    if (auth) {
      options.auth = {
        username: auth.user,
        password: auth.password,
        callOptions: () => ({ deadline: Date.now() + connectTimeout }),
      };
    }
    if (tls) {
      options.credentials = {
        // grpc-js falls back to the system's roots when this is null.
        rootCertificate: (tls.ca === undefined ? null : Buffer.from(tls.ca)) as Buffer,
        privateKey: tls.key === undefined ? undefined : Buffer.from(tls.key),
        certChain: tls.cert === undefined ? undefined : Buffer.from(tls.cert),
      };
    }
    return options;
  }

  private requireSession(operation: string): Session {
    if (this.currentState === 'closed') throw closedError(operation);
    const session = this.session;
    if (!session) {
      const why = this.currentState === 'expired' ? 'the lease has expired' : 'not connected';
      throw new EtcdBackendError('ERR_SESSION_EXPIRED', `etcd ${operation}: ${why}; call connect() for a new lease`);
    }
    return session;
  }

  /** Runs one etcd call with the operation timeout, mapping every failure to an {@link EtcdBackendError}. */
  private async op<T>(
    operation: string,
    location: string | undefined,
    call: (client: Etcd3, deadline: number) => Promise<T>,
  ): Promise<T> {
    const client = this.etcd(operation);
    const session = this.session;
    try {
      const timeout = this.options.operationTimeout;
      return await bounded(
        call(client, Date.now() + timeout),
        timeout,
        () =>
          new EtcdBackendError(
            'ERR_BACKEND_TIMEOUT',
            `etcd ${operation} (${location}): no answer within ${timeout} ms`,
            {
              location,
            },
          ),
      );
    } catch (error) {
      if (this.currentState === 'closed') throw closedError(operation);
      const mapped = toBackendError(error, operation, location);
      // etcd said our lease does not exist: it is gone, whatever our clock thought.
      if (mapped.code === 'ERR_SESSION_EXPIRED' && session && this.session === session) {
        this.loseSession(session, mapped.message, { maybeAlive: false });
      }
      throw mapped;
    }
  }

  private txn(
    operation: string,
    location: string,
    request: { compare: ICompare[]; success: IRequestOp[]; failure?: IRequestOp[] },
  ): Promise<ITxnResponse> {
    return this.op(operation, location, (client, deadline) => client.kv.txn(request, { deadline }));
  }

  private async rangeOp(operation: string, keyOrPrefix: string, prefix: boolean): Promise<IKeyValue[]> {
    const key = Buffer.from(keyOrPrefix);
    const response = await this.op(operation, keyOrPrefix, (client, deadline) =>
      client.kv.range({ key, range_end: prefix ? prefixRangeEnd(key) : undefined }, { deadline }),
    );
    return response.kvs;
  }

  private async deleteIfOurs(operation: string, key: string, session: Session): Promise<void> {
    const keyBuffer = Buffer.from(key);
    await this.txn(operation, key, {
      compare: [{ key: keyBuffer, target: 'Lease', result: 'Equal', lease: session.id }],
      success: [{ request_delete_range: { key: keyBuffer } }],
    });
  }

  private watch(keyOrPrefix: string, prefix: boolean, deliver: (kvs: IKeyValue[]) => void): Unsubscribe {
    this.etcd('watch');
    const key = Buffer.from(keyOrPrefix);
    const watch = new KeyWatch(
      {
        range: async (k, rangeEnd, location) => {
          const response = await this.op('watch (read)', location, (client, deadline) =>
            client.kv.range({ key: k, range_end: rangeEnd }, { deadline }),
          );
          return { kvs: response.kvs, revision: BigInt(response.header.revision) };
        },
        probe: async (k, rangeEnd, location, after) => {
          // etcd's count is the range's, before the mod-revision filter; the kvs are the keys changed after `after`.
          const response = await this.op('watch (check)', location, (client, deadline) =>
            client.kv.range(
              { key: k, range_end: rangeEnd, keys_only: true, min_mod_revision: (after + 1n).toString() },
              { deadline },
            ),
          );
          return {
            count: Number(response.count),
            changed: response.kvs.length,
            revision: BigInt(response.header.revision),
          };
        },
        openStream: () => this.etcd('watch').watchClient.watch(),
        refreshAuth: async () => {
          const prefixKey = Buffer.from(this.options.prefix);
          await this.op('watch (auth)', this.options.prefix, (client, deadline) =>
            client.kv.range(
              { key: prefixKey, range_end: prefixRangeEnd(prefixKey), limit: 1, keys_only: true },
              { deadline },
            ),
          );
        },
        reportError: (error) => this.report(error),
      },
      {
        key,
        rangeEnd: prefix ? prefixRangeEnd(key) : undefined,
        location: keyOrPrefix,
        deliver,
        // A third of the TTL, 1 to 10 s: a stuck watch is re-created within about two TTLs.
        checkEveryMs: Math.min(10_000, Math.max(1_000, Math.floor((this.options.ttl * 1000) / 3))),
      },
    );
    this.watches.add(watch);
    watch.start();
    return () => {
      watch.stop();
      this.watches.delete(watch);
    };
  }

  private toMembers(kvs: readonly IKeyValue[], reported?: Set<string>): Member[] {
    const members: Member[] = [];
    for (const kv of kvs) {
      const location = kv.key.toString();
      const info = parseMemberEntry(kv.value.toString());
      if (typeof info === 'string') {
        const seen = `${location}@${kv.mod_revision}`;
        if (!reported?.has(seen)) {
          reported?.add(seen);
          this.report(
            new EtcdBackendError('ERR_MALFORMED_RECORD', `etcd member entry ${location} is malformed: ${info}`, {
              location,
            }),
          );
        }
        continue;
      }
      members.push({ info, order: Number(kv.create_revision), location });
    }
    return members.sort((a, b) => a.order - b.order);
  }

  private toClaim(kv: IKeyValue, location: string): Claim {
    const session = this.session;
    return { value: kv.value.toString(), mine: session !== undefined && kv.lease === session.id, location };
  }
}

/** Keepalives go out every TTL/4, as the AllocatorBackend contract asks of liveness round-trips. */
function keepAliveInterval(session: Session): number {
  return Math.max(100, Math.floor(session.ttlMs / 4));
}

/** The pause before a new keepalive stream after one failed: a fifth of the interval, from 50 to 500 ms. */
function keepAliveRetryDelay(session: Session): number {
  return Math.max(50, Math.min(500, Math.floor(keepAliveInterval(session) / 5)));
}

function toRecord(kv: IKeyValue, location: string): VersionedRecord {
  return { value: kv.value.toString(), version: kv.mod_revision, location };
}

function closedError(operation: string): EtcdBackendError {
  return new EtcdBackendError('ERR_BACKEND_CLOSED', `etcd ${operation}: the backend is closed`);
}

/** Rejects with `onTimeout()` when `promise` takes longer than `ms`. The call itself is not cancelled. */
function bounded<T>(promise: Promise<T>, ms: number, onTimeout: () => EtcdBackendError): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * etcd3's fault handling: with several hosts, a circuit breaker per host (so that a dead host is skipped after a
 * few failures, re-tried after a second) and a retry on another host for calls that never reached a server. Calls
 * that may have reached etcd are not retried here: a compare-and-set whose reply was lost must not be replayed
 * blindly. With one host there is nothing to fail over to, so no breaker either (it would only delay recovery).
 */
function faultHandling(hostCount: number): IOptions['faultHandling'] {
  if (hostCount === 1) return { host: () => noop, global: noop };
  const neverSent = (error: Error) =>
    (error as { isBrokenCircuitError?: boolean }).isBrokenCircuitError === true ||
    /No connection established|ECONNREFUSED/.test(error.message);
  return {
    host: () =>
      circuitBreaker(
        handleWhen((error) => neverSent(error) || error.constructor.name === 'GRPCUnavailableError'),
        {
          halfOpenAfter: 1_000,
          breaker: new ConsecutiveBreaker(3),
        },
      ) as IPolicy,
    global: retry(handleWhen(neverSent), { maxAttempts: hostCount - 1 }) as IPolicy,
  };
}
