import { performance } from 'node:perf_hooks';
import type {
  AllocatorBackend,
  BackendError,
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
import * as zookeeper from 'node-zookeeper-client';
import { exceptionCode, toBackendError, ZooKeeperBackendError, type ZooKeeperBackendErrorOptions } from './errors';
import { resolveOptions, toClientAcl, type ResolvedOptions, type ZooKeeperBackendOptions } from './options';
import { MEMBER_PREFIX, ZnodeLayout } from './paths';
import { RETRY, Subscription, type WatchRead } from './watch';
import { ZkConnection, type ZkWatcher } from './zk';

/** Longest pause between two rounds of attempts over the ensemble (node-zookeeper-client's default is 1 s). */
const SPIN_DELAY_MS = 250;
/** Largest znode payload the server accepts by default (jute.maxbuffer), minus room for the request framing. */
const MAX_DATA_BYTES = 1024 * 1024 - 1024;
/** ZooKeeper's "any version" sentinel is -1; ours are always the real version. */
const VERSION_PATTERN = /^\d+$/;

/**
 * The ZooKeeper allocator backend: group membership, the shared records, ownership claims and watches, on a
 * ZooKeeper ensemble through node-zookeeper-client. The GroupedConsumer of `@kiel/consumer` drives it; it does I/O
 * only.
 *
 * The znodes it keeps under `rootPath` (default `/kiel`) are listed in `paths.ts` ({@link ZnodeLayout}).
 *
 * The client never reports a lost server on its own while the socket stays open (a frozen or partitioned server),
 * so the backend makes its own round-trip every `sessionTimeout / 5` and reports `disconnected` once nothing has
 * answered for `sessionTimeout / 3`.
 *
 * @example
 * ```ts
 * import { ZooKeeperBackend } from '@kiel/allocator-zk';
 *
 * const backend = new ZooKeeperBackend({ hosts: 'zk1:2181,zk2:2181,zk3:2181', sessionTimeout: 10_000 });
 * backend.on('disconnected', ({ reason }) => console.warn('fencing:', reason));
 * await backend.connect();
 * const me = await backend.join('billing', { id: `host-a:${process.pid}`, host: 'host-a', pid: process.pid });
 * console.log('joined with order', me.order);
 * const stop = backend.watchMembers('billing', (members) => console.log(members.map((m) => m.info.id)));
 * // ...
 * stop();
 * await backend.close();
 * ```
 */
export class ZooKeeperBackend extends AllocatorBackendBase implements AllocatorBackend {
  /** @inheritdoc */
  readonly name = 'zookeeper';
  /** ZooKeeper watches fire once and re-arming re-reads, so intermediate states may be coalesced. */
  readonly supports: BackendSupports = { orderedWatchHistory: false, weights: true, auth: true };

  private readonly options: ResolvedOptions;
  private readonly layout: ZnodeLayout;
  private readonly acl: zookeeper.ACL[];
  private readonly subscriptions = new Set<Subscription<unknown>>();
  private connection: ZkConnection | undefined;
  private connecting: Promise<void> | undefined;
  private abortConnect: ((error: ZooKeeperBackendError) => void) | undefined;
  private closing: Promise<void> | undefined;
  private granted: number;
  private liveness: ReturnType<typeof setInterval> | undefined;
  private livenessPeriod = 20;
  private heartbeatInFlight = false;
  private lastHeartbeat = 0;
  private lastForcedReconnect = 0;
  /** Ephemeral znodes (member entries, claims) this session created and has not removed. */
  private readonly ephemerals = new Set<string>();
  /**
   * Ephemeral znodes of sessions given up on (by our own clock, or expired), in case the server still holds them:
   * removed once a new session is open, and retried until done (see {@link removeAbandoned}).
   */
  private abandoned: Array<{ owner: Buffer; path: string; since: number }> = [];
  private abandonedTimer: ReturnType<typeof setTimeout> | undefined;

  /** Throws `ERR_INVALID_CONFIG`, naming the option, when an option is invalid. Does not connect. */
  constructor(options: ZooKeeperBackendOptions) {
    super();
    this.options = resolveOptions(options);
    this.layout = new ZnodeLayout(this.options.rootPath);
    this.acl = toClientAcl(this.options.acl);
    this.granted = this.options.sessionTimeout;
  }

  /** @inheritdoc */
  get sessionTimeout(): number {
    return this.granted;
  }

  /** The current session id (`0x` and 16 hex digits, as in ZooKeeper's logs), or undefined without a session. */
  get sessionId(): string | undefined {
    return this.connection && this.currentState !== 'connecting' ? this.connection.sessionId : undefined;
  }

  /** The parent of every znode this backend uses. */
  get rootPath(): string {
    return this.options.rootPath;
  }

  /** Every error this backend raises is a {@link ZooKeeperBackendError}. */
  protected override error(
    code: BackendErrorCode,
    message: string,
    options: ZooKeeperBackendErrorOptions = {},
  ): ZooKeeperBackendError {
    return new ZooKeeperBackendError(code, message, options);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Session lifecycle.

  /** @inheritdoc */
  connect(): Promise<void> {
    if (this.currentState === 'closed') return Promise.reject(closedError());
    if (this.currentState === 'connected') return Promise.resolve();
    if (this.connecting) return this.connecting;
    const reconnecting = this.currentState === 'disconnected' && this.connection !== undefined;
    this.connecting = (reconnecting ? this.awaitReconnect() : this.openSession()).finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** @inheritdoc */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.currentState = 'closed';
    this.stopLiveness();
    clearTimeout(this.abandonedTimer);
    for (const subscription of this.subscriptions) subscription.stop();
    this.subscriptions.clear();
    this.abortConnect?.(closedError());
    const connection = this.connection;
    this.connection = undefined;
    try {
      await connection?.dispose(this.options.operationTimeout);
    } catch {
      // close() never rejects; the socket is destroyed by dispose() whatever the server says.
    }
  }

  /** Makes a new client (the old one, if any, is dead after expiry) and waits for its session. */
  private async openSession(): Promise<void> {
    const resumeState = this.currentState;
    const raw = zookeeper.createClient(this.options.connectionString, {
      sessionTimeout: this.options.sessionTimeout,
      spinDelay: SPIN_DELAY_MS,
      retries: 0,
    });
    if (this.options.auth !== undefined) raw.addAuthInfo('digest', Buffer.from(this.options.auth));
    const connection: ZkConnection = new ZkConnection(raw, {
      operationTimeout: this.options.operationTimeout,
      onContact: (sentAt) => {
        if (this.connection === connection) this.contactAt = Math.max(this.contactAt, sentAt);
      },
    });
    this.connection = connection;
    this.currentState = 'connecting';
    raw.on('state', (state: zookeeper.State) => this.onClientState(connection, state));
    try {
      await this.firstSession(connection);
      // The credentials were queued before this read, so the server has checked them once it answers.
      await connection.exists('/');
    } catch (error) {
      if (this.connection === connection) {
        this.connection = undefined;
        this.currentState = resumeState;
      }
      await connection.dispose(0);
      if (this.currentState === 'closed') throw closedError();
      throw toBackendError(error, 'connect', this.options.connectionString);
    }
    if (this.connection !== connection) throw closedError();
    // Before `connected`: the member joins again next, and the group's leader should find the old entries gone.
    await this.removeAbandoned();
    if (this.connection !== connection) throw closedError();
    this.granted = connection.sessionTimeout;
    // Contact is the send time of the read above (onContact), not now: the process may have paused since.
    this.currentState = 'connected';
    this.startLiveness(connection);
    this.emit('connected', { sessionId: connection.sessionId, newSession: true });
    this.refreshSubscriptions();
  }

  /** Resolves on the client's first `connected`; rejects on a connect timeout, failed authentication or close. */
  private firstSession(connection: ZkConnection): Promise<void> {
    const { connectTimeout, connectionString } = this.options;
    return new Promise<void>((resolve, reject) => {
      const finish = (error?: ZooKeeperBackendError): void => {
        clearTimeout(timer);
        connection.raw.removeListener('connected', onConnected);
        connection.raw.removeListener('authenticationFailed', onAuthFailed);
        this.abortConnect = undefined;
        if (error) reject(error);
        else resolve();
      };
      const onConnected = (): void => finish();
      const onAuthFailed = (): void =>
        finish(new ZooKeeperBackendError('ERR_BACKEND_AUTH', 'ZooKeeper rejected the credentials of the auth option'));
      const timer = setTimeout(
        () =>
          finish(
            new ZooKeeperBackendError(
              'ERR_BACKEND_UNAVAILABLE',
              `no ZooKeeper session within the connect timeout of ${connectTimeout} ms`,
              { location: connectionString },
            ),
          ),
        connectTimeout,
      );
      this.abortConnect = finish;
      connection.raw.once('connected', onConnected);
      connection.raw.once('authenticationFailed', onAuthFailed);
      connection.raw.connect();
    });
  }

  /** While disconnected with a session that may still live, waits for the client to get it back. */
  private awaitReconnect(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const finish = (error?: BackendError): void => {
        clearTimeout(timer);
        this.events.off('connected', onConnected);
        this.events.off('expired', onExpired);
        this.abortConnect = undefined;
        if (error) reject(error);
        else resolve();
      };
      const onConnected = (): void => finish();
      const onExpired = (): void => {
        // The session is gone while we waited: open a new one, as connect() does after expiry.
        this.events.off('connected', onConnected);
        this.events.off('expired', onExpired);
        clearTimeout(timer);
        this.abortConnect = undefined;
        this.openSession().then(resolve, reject);
      };
      const timer = setTimeout(
        () =>
          finish(
            new ZooKeeperBackendError(
              'ERR_BACKEND_UNAVAILABLE',
              `ZooKeeper did not answer within the connect timeout of ${this.options.connectTimeout} ms`,
              { location: this.options.connectionString },
            ),
          ),
        this.options.connectTimeout,
      );
      this.abortConnect = finish;
      this.events.on('connected', onConnected);
      this.events.on('expired', onExpired);
    });
  }

  private onClientState(connection: ZkConnection, state: zookeeper.State): void {
    if (this.connection !== connection || this.currentState === 'closed') return;
    switch (state.code) {
      case zookeeper.State.SYNC_CONNECTED.code:
        this.contactAt = performance.now();
        this.recovered(connection);
        break;
      case zookeeper.State.DISCONNECTED.code:
        this.lost('the connection to ZooKeeper was lost');
        break;
      case zookeeper.State.EXPIRED.code:
        this.expire(connection);
        break;
      case zookeeper.State.AUTH_FAILED.code:
        // While connecting, connect() rejects with ERR_BACKEND_AUTH itself.
        if (this.currentState === 'connecting') break;
        // The client gives up after this; nothing it holds can be trusted any more.
        this.report(
          new ZooKeeperBackendError('ERR_BACKEND_AUTH', 'ZooKeeper rejected the credentials of the auth option'),
        );
        this.expire(connection);
        break;
      default:
        break;
    }
  }

  private lost(reason: string): void {
    if (this.currentState !== 'connected') return;
    this.currentState = 'disconnected';
    this.emit('disconnected', { reason });
  }

  private recovered(connection: ZkConnection): void {
    if (this.currentState !== 'disconnected' || this.connection !== connection) return;
    if (connection.raw.getState().code !== zookeeper.State.SYNC_CONNECTED.code) return;
    this.currentState = 'connected';
    this.emit('connected', { sessionId: connection.sessionId, newSession: false });
    // The client re-registers its watches on reconnect, but a change may have been missed while they were away
    // or while a reply was lost: read everything again.
    this.refreshSubscriptions();
  }

  private expire(connection: ZkConnection): void {
    if (this.connection !== connection) return;
    const sessionId = connection.sessionId;
    // Given up on by our clock, the server may still hold the session for a while (a new ensemble leader gives every
    // session a whole timeout again), and with it this member's entry and claims: the group would wait for them.
    const owner = Buffer.from(connection.raw.getSessionId());
    const since = performance.now();
    for (const path of this.ephemerals) this.abandoned.push({ owner, path, since });
    this.ephemerals.clear();
    this.connection = undefined;
    this.currentState = 'expired';
    this.stopLiveness();
    for (const subscription of this.subscriptions) subscription.disarm();
    void connection.dispose(0);
    this.emit('expired', { sessionId });
  }

  /**
   * Removes the ephemeral znodes of sessions given up on, each only while the old session still owns it (never
   * another session's node of the same path). Done by the new session; a failure (the ensemble still settling after
   * an outage) is retried every 500 ms, for up to 10 session timeouts. Never throws.
   */
  private async removeAbandoned(): Promise<void> {
    clearTimeout(this.abandonedTimer);
    this.abandonedTimer = undefined;
    const connection = this.connection;
    if (this.abandoned.length === 0 || connection === undefined || this.currentState === 'closed') return;
    const left: typeof this.abandoned = [];
    await Promise.all(
      this.abandoned.map(async (entry) => {
        try {
          const stat = await connection.exists(entry.path);
          if (stat && stat.ephemeralOwner.equals(entry.owner)) await connection.remove(entry.path, stat.version);
        } catch (error) {
          const code = exceptionCode(error);
          if (code === zookeeper.Exception.NO_NODE || code === zookeeper.Exception.BAD_VERSION) return;
          if (performance.now() - entry.since <= 10 * this.granted) left.push(entry);
        }
      }),
    );
    this.abandoned = left;
    // Read again after the awaits above (a close may have come meanwhile); a getter keeps TypeScript from narrowing.
    if (left.length > 0 && this.state !== 'closed') {
      this.abandonedTimer = setTimeout(() => void this.removeAbandoned(), 500);
      this.abandonedTimer.unref();
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Liveness: our own clock, because the client has none.

  private startLiveness(connection: ZkConnection): void {
    this.stopLiveness();
    this.lastHeartbeat = performance.now();
    this.lastForcedReconnect = 0;
    const period = Math.max(20, Math.floor(this.granted / 10));
    this.livenessPeriod = period;
    this.liveness = setInterval(() => this.checkLiveness(connection), period);
    this.liveness.unref();
  }

  private stopLiveness(): void {
    if (this.liveness) clearInterval(this.liveness);
    this.liveness = undefined;
  }

  private checkLiveness(connection: ZkConnection): void {
    if (this.connection !== connection) return;
    const now = performance.now();
    const session = this.granted;
    const silence = now - this.contactAt;
    if (silence > session / 3) this.lost(`no answer from ZooKeeper for ${Math.round(silence)} ms`);
    // A whole session timeout without an answer: the server expires the session at the latest when it hears
    // from anyone again, and may already have. Count it lost now, on our own clock, rather than race the
    // server's session tracker after a freeze (the client would not tell us until it reconnects).
    if (silence > session) {
      this.expire(connection);
      return;
    }
    // Like the Java client's read timeout: drop a connection that stays silent, so the client moves on to
    // another server of the ensemble while the session may still be saved.
    if (silence > (2 * session) / 3 && now - this.lastForcedReconnect > (2 * session) / 3) {
      this.lastForcedReconnect = now;
      connection.dropSocket();
    }
    // Every other tick: timers fire a fraction of a ms early on the clock measured here, so half a tick of slack
    // keeps the heartbeat at session / 5 rather than slipping to the third tick (0.3 of the session).
    if (!this.heartbeatInFlight && now - this.lastHeartbeat >= session / 5 - this.livenessPeriod / 2) {
      this.heartbeatInFlight = true;
      this.lastHeartbeat = now;
      connection
        .exists('/')
        .then(
          () => this.recovered(connection),
          (error: unknown) => {
            // A heartbeat answered SESSION_EXPIRED: the server ended the session; do not wait for a reconnect.
            if (exceptionCode(error) === zookeeper.Exception.SESSION_EXPIRED) this.expire(connection);
          },
        )
        .finally(() => {
          this.heartbeatInFlight = false;
        });
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Membership.

  /** @inheritdoc */
  async join(group: string, info: MemberInfo): Promise<Member> {
    const connection = this.session();
    const dir = this.layout.members(group);
    // A retry after a lost reply must find the entry the first attempt created: the client sends requests in
    // order on one session, so listing after the lost create sees it if the server executed it.
    const existing = await this.ownMember(connection, dir, info.id);
    if (existing) {
      this.ownEphemeral(connection, existing.location);
      return existing;
    }
    const data = encode(JSON.stringify(info), dir);
    let created: string;
    try {
      created = await this.createWithParents(
        connection,
        `${dir}/${MEMBER_PREFIX}`,
        data,
        zookeeper.CreateMode.EPHEMERAL_SEQUENTIAL,
      );
    } catch (error) {
      const found = await this.ownMember(connection, dir, info.id).catch(() => undefined);
      if (found) {
        this.ownEphemeral(connection, found.location);
        return found;
      }
      throw toBackendError(error, 'create', dir);
    }
    this.ownEphemeral(connection, created);
    return { info, order: memberOrder(created.slice(dir.length + 1)), location: created };
  }

  /** @inheritdoc */
  async leave(group: string): Promise<void> {
    const connection = this.session();
    const dir = this.layout.members(group);
    const children = await this.call(connection, 'getChildren', dir, () => connection.getChildren(dir), {
      missing: [],
    });
    await Promise.all(
      children
        .filter((name) => name.startsWith(MEMBER_PREFIX))
        .map(async (name) => {
          const path = `${dir}/${name}`;
          const stat = await this.call(connection, 'exists', path, () => connection.exists(path));
          if (stat && connection.ownsEphemeral(stat)) {
            await this.call(connection, 'remove', path, () => connection.remove(path, stat.version), {
              missing: undefined,
            });
          }
          this.ephemerals.delete(path);
        }),
    );
  }

  /** @inheritdoc */
  async members(group: string): Promise<readonly Member[]> {
    const connection = this.session();
    return this.listMembers(connection, this.layout.members(group));
  }

  /** @inheritdoc */
  watchMembers(group: string, listener: MembersListener): Unsubscribe {
    const dir = this.layout.members(group);
    // A member entry never changes once created and its sequential name is never reused under the same directory,
    // so each delivery reads only the entries it has not seen: a change costs one read per member, not one per
    // member and entry (64 members joining one by one would read 64 × 64 entries each time). The cache is only
    // valid for one incarnation of the directory: its creation zxid tells a directory deleted and created again.
    const known = new Map<string, Member>();
    let incarnation = '';
    return this.subscribe<readonly Member[]>(dir, listener, async (connection, watcher) => {
      let listed: { children: string[]; stat: zookeeper.Stat };
      try {
        listed = await connection.getChildrenAndStat(dir, watcher);
      } catch (error) {
        if (exceptionCode(error) !== zookeeper.Exception.NO_NODE) throw error;
        // No group yet: watch for its creation instead; if it appeared in between, read again.
        if (await connection.exists(dir, watcher)) return RETRY;
        return [];
      }
      const created = listed.stat.czxid.toString('hex');
      if (created !== incarnation) {
        known.clear();
        incarnation = created;
      }
      const present = new Set(listed.children);
      for (const name of known.keys()) if (!present.has(name)) known.delete(name);
      const unseen = listed.children.filter((name) => !known.has(name));
      for (const { member } of await this.memberEntries(connection, dir, unseen)) {
        known.set(member.location.slice(dir.length + 1), member);
      }
      return [...known.values()].sort((a, b) => a.order - b.order);
    });
  }

  private async listMembers(connection: ZkConnection, dir: string): Promise<Member[]> {
    const entries = await this.memberEntries(connection, dir);
    return entries.map((entry) => entry.member);
  }

  /** Reads every member entry of `dir` (or of the `listed` children); malformed ones are reported and left out. */
  private async memberEntries(
    connection: ZkConnection,
    dir: string,
    listed?: readonly string[],
  ): Promise<Array<{ member: Member; stat: zookeeper.Stat }>> {
    const children =
      listed ??
      (await this.call<string[], string[]>(connection, 'getChildren', dir, () => connection.getChildren(dir), {
        missing: [],
      }));
    const entries = await Promise.all(
      children.map(async (name) => {
        const path = `${dir}/${name}`;
        const read = await this.call(connection, 'getData', path, () => connection.getData(path), {
          missing: undefined,
        });
        if (!read) return undefined;
        try {
          return { member: parseMember(name, path, read.data), stat: read.stat };
        } catch (error) {
          this.report(error as ZooKeeperBackendError);
          return undefined;
        }
      }),
    );
    return entries
      .filter((entry): entry is { member: Member; stat: zookeeper.Stat } => entry !== undefined)
      .sort((a, b) => a.member.order - b.member.order);
  }

  private async ownMember(connection: ZkConnection, dir: string, id: string): Promise<Member | undefined> {
    const entries = await this.memberEntries(connection, dir);
    return entries.find(({ member, stat }) => member.info.id === id && connection.ownsEphemeral(stat))?.member;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Records.

  /** @inheritdoc */
  async readRecord(group: string, name: RecordName): Promise<VersionedRecord | null> {
    const connection = this.session();
    const path = this.layout.record(group, name);
    const read = await this.call(connection, 'getData', path, () => connection.getData(path), { missing: null });
    return read && toRecord(path, read.data, read.stat);
  }

  /** @inheritdoc */
  async writeRecord(
    group: string,
    name: RecordName,
    value: string,
    expected: RecordVersion | null,
  ): Promise<RecordVersion | null> {
    const connection = this.session();
    const path = this.layout.record(group, name);
    const data = encode(value, path);
    if (expected === null) {
      try {
        await this.createWithParents(connection, path, data, zookeeper.CreateMode.PERSISTENT);
        return '0';
      } catch (error) {
        if (exceptionCode(error) === zookeeper.Exception.NODE_EXISTS) return null;
        throw toBackendError(error, 'create', path);
      }
    }
    // A version token we never handed out cannot be the current one.
    if (typeof expected !== 'string' || !VERSION_PATTERN.test(expected)) return null;
    const stat = await this.call(connection, 'setData', path, () => connection.setData(path, data, Number(expected)), {
      missing: null,
      conflict: null,
    });
    return stat && String(stat.version);
  }

  /** @inheritdoc */
  watchRecord(group: string, name: RecordName, listener: RecordListener): Unsubscribe {
    const path = this.layout.record(group, name);
    return this.subscribe<VersionedRecord | null>(path, listener, async (connection, watcher) =>
      this.readWatched(connection, path, watcher, (data, stat) => toRecord(path, data, stat)),
    );
  }

  // ---------------------------------------------------------------------------------------------------------
  // Claims.

  /** @inheritdoc */
  async claim(group: string, partition: string, value: string): Promise<boolean> {
    const connection = this.session();
    const path = this.layout.claim(group, partition);
    const data = encode(value, path);
    // Bounded: each round either creates the claim, finds one, or saw one vanish between two calls.
    for (let round = 0; round < 3; round++) {
      try {
        await this.createWithParents(connection, path, data, zookeeper.CreateMode.EPHEMERAL);
        this.ownEphemeral(connection, path);
        return true;
      } catch (error) {
        if (exceptionCode(error) !== zookeeper.Exception.NODE_EXISTS) throw toBackendError(error, 'create', path);
      }
      // Maybe our own create whose reply was lost: the owner decides, never the data.
      const stat = await this.call(connection, 'exists', path, () => connection.exists(path));
      if (stat) {
        const mine = connection.ownsEphemeral(stat);
        if (mine) this.ownEphemeral(connection, path);
        return mine;
      }
    }
    return false;
  }

  /** Records an ephemeral znode of the current session (see {@link expire}). */
  private ownEphemeral(connection: ZkConnection, path: string): void {
    if (this.connection === connection) this.ephemerals.add(path);
  }

  /** @inheritdoc */
  async release(group: string, partition: string): Promise<void> {
    const connection = this.session();
    const path = this.layout.claim(group, partition);
    const stat = await this.call(connection, 'exists', path, () => connection.exists(path));
    if (!stat || !connection.ownsEphemeral(stat)) {
      this.ephemerals.delete(path);
      return;
    }
    await this.call(connection, 'remove', path, () => connection.remove(path, stat.version), {
      missing: undefined,
      conflict: undefined,
    });
    this.ephemerals.delete(path);
  }

  /** @inheritdoc */
  async readClaim(group: string, partition: string): Promise<Claim | null> {
    const connection = this.session();
    const path = this.layout.claim(group, partition);
    const read = await this.call(connection, 'getData', path, () => connection.getData(path), { missing: null });
    return read && toClaim(connection, path, read.data, read.stat);
  }

  /** @inheritdoc */
  async claims(group: string): Promise<ReadonlyMap<string, Claim>> {
    const connection = this.session();
    const dir = this.layout.owners(group);
    const children = await this.call(connection, 'getChildren', dir, () => connection.getChildren(dir), {
      missing: [],
    });
    const found = await Promise.all(
      children.map(async (partition) => {
        const path = `${dir}/${partition}`;
        const read = await this.call(connection, 'getData', path, () => connection.getData(path), { missing: null });
        return read && ([partition, toClaim(connection, path, read.data, read.stat)] as const);
      }),
    );
    return new Map(found.filter((entry) => entry !== null).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** @inheritdoc */
  watchClaim(group: string, partition: string, listener: ClaimListener): Unsubscribe {
    const path = this.layout.claim(group, partition);
    return this.subscribe<Claim | null>(path, listener, async (connection, watcher) =>
      this.readWatched(connection, path, watcher, (data, stat) => toClaim(connection, path, data, stat)),
    );
  }

  // ---------------------------------------------------------------------------------------------------------
  // Markers.

  /** @inheritdoc */
  async writeMarker(group: string, partition: string, value: string | null): Promise<void> {
    const connection = this.session();
    const path = this.layout.marker(group, partition);
    if (value === null) {
      await this.call(connection, 'remove', path, () => connection.remove(path, -1), { missing: undefined });
      return;
    }
    const data = encode(value, path);
    // Usually there: one setData. The first write of a partition creates it (a racing creator is as good).
    const stat = await this.call(connection, 'setData', path, () => connection.setData(path, data, -1), {
      missing: null,
    });
    if (stat !== null) return;
    try {
      await this.createWithParents(connection, path, data, zookeeper.CreateMode.PERSISTENT);
    } catch (error) {
      if (exceptionCode(error) !== zookeeper.Exception.NODE_EXISTS) throw toBackendError(error, 'create', path);
      await this.call(connection, 'setData', path, () => connection.setData(path, data, -1));
    }
  }

  /** @inheritdoc */
  async readMarker(group: string, partition: string): Promise<string | null> {
    const connection = this.session();
    const path = this.layout.marker(group, partition);
    const read = await this.call(connection, 'getData', path, () => connection.getData(path), { missing: null });
    return read && (read.data?.toString('utf8') ?? '');
  }

  /** @inheritdoc */
  async markers(group: string): Promise<ReadonlyMap<string, string>> {
    const connection = this.session();
    const dir = this.layout.markers(group);
    const children = await this.call(connection, 'getChildren', dir, () => connection.getChildren(dir), {
      missing: [],
    });
    const found = await Promise.all(
      children.map(async (partition) => {
        const path = `${dir}/${partition}`;
        const read = await this.call(connection, 'getData', path, () => connection.getData(path), { missing: null });
        return read && ([partition, read.data?.toString('utf8') ?? ''] as const);
      }),
    );
    return new Map(found.filter((entry) => entry !== null).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  // ---------------------------------------------------------------------------------------------------------
  // Plumbing.

  /** The connection calls go through, or the error that the current state calls for. */
  private session(): ZkConnection {
    switch (this.currentState) {
      case 'closed':
        throw closedError();
      case 'expired':
        throw new ZooKeeperBackendError(
          'ERR_SESSION_EXPIRED',
          'the ZooKeeper session expired; call connect() to open a new one',
        );
      default:
        if (!this.connection) {
          throw new ZooKeeperBackendError(
            'ERR_BACKEND_UNAVAILABLE',
            'not connected to ZooKeeper; call connect() first',
          );
        }
        return this.connection;
    }
  }

  /**
   * Runs one ZooKeeper call, mapping its failure to a {@link ZooKeeperBackendError}. `missing` and `conflict` are
   * the results to use when the server answers NO_NODE or NODE_EXISTS / BAD_VERSION.
   */
  private async call<T, M = never, C = never>(
    connection: ZkConnection,
    operation: string,
    location: string,
    run: () => Promise<T>,
    answers: { missing?: M; conflict?: C } = {},
  ): Promise<T | M | C> {
    try {
      return await run();
    } catch (error) {
      const code = exceptionCode(error);
      if (code === zookeeper.Exception.NO_NODE && 'missing' in answers) return answers.missing as M;
      if (
        (code === zookeeper.Exception.NODE_EXISTS || code === zookeeper.Exception.BAD_VERSION) &&
        'conflict' in answers
      ) {
        return answers.conflict as C;
      }
      // The server says the session is gone: believe it at once, whatever the client's own state says. Only the
      // session the request ran on: a late answer to an old session's request must not end the new one.
      if (code === zookeeper.Exception.SESSION_EXPIRED) this.expire(connection);
      throw toBackendError(error, operation, location);
    }
  }

  /**
   * Creates `path`, and its missing parents (persistent, with our ACL) when the server says they are missing.
   * Rejects with the client's exception (callers match NODE_EXISTS) or a {@link ZooKeeperBackendError}.
   */
  private async createWithParents(connection: ZkConnection, path: string, data: Buffer, mode: number): Promise<string> {
    try {
      return await connection.create(path, data, this.acl, mode);
    } catch (error) {
      if (exceptionCode(error) !== zookeeper.Exception.NO_NODE) throw error;
    }
    const parent = path.slice(0, path.lastIndexOf('/'));
    let prefix = '';
    for (const segment of parent.split('/').slice(1)) {
      prefix = `${prefix}/${segment}`;
      const dir = prefix;
      await this.call(
        connection,
        'create',
        dir,
        () => connection.create(dir, Buffer.alloc(0), this.acl, zookeeper.CreateMode.PERSISTENT),
        {
          conflict: '',
        },
      );
    }
    return connection.create(path, data, this.acl, mode);
  }

  /** Reads one znode and sets a watch on it, or on its creation when it does not exist. */
  private async readWatched<T>(
    connection: ZkConnection,
    path: string,
    watcher: ZkWatcher,
    convert: (data: Buffer | undefined, stat: zookeeper.Stat) => T,
  ): Promise<T | null | typeof RETRY> {
    try {
      const read = await connection.getData(path, watcher);
      return convert(read.data, read.stat);
    } catch (error) {
      if (exceptionCode(error) !== zookeeper.Exception.NO_NODE) throw error;
    }
    // Absent: watch for its creation. If it appeared since the read, read it again.
    return (await connection.exists(path, watcher)) ? RETRY : null;
  }

  private subscribe<T>(location: string, listener: (state: T) => void, read: WatchRead<T>): Unsubscribe {
    if (this.currentState === 'closed') throw closedError();
    const subscription = new Subscription<T>({
      location,
      listener,
      read,
      connection: () =>
        this.currentState === 'expired' || this.currentState === 'closed' ? undefined : this.connection,
      retryDelay: () => Math.max(100, Math.floor(this.granted / 10)),
      report: (error) => this.report(error),
    });
    this.subscriptions.add(subscription as Subscription<unknown>);
    // The first delivery is asynchronous, never inside watch*() itself.
    setImmediate(() => subscription.refresh());
    return () => {
      subscription.stop();
      this.subscriptions.delete(subscription as Subscription<unknown>);
    };
  }

  private refreshSubscriptions(): void {
    for (const subscription of this.subscriptions) subscription.refresh();
  }
}

function closedError(): ZooKeeperBackendError {
  return new ZooKeeperBackendError('ERR_BACKEND_CLOSED', 'the ZooKeeper backend is closed');
}

function encode(value: string, path: string): Buffer {
  if (typeof value !== 'string') {
    throw new ZooKeeperBackendError('ERR_INVALID_CONFIG', 'the value to store must be a string', { location: path });
  }
  const data = Buffer.from(value, 'utf8');
  if (data.length > MAX_DATA_BYTES) {
    throw new ZooKeeperBackendError(
      'ERR_INVALID_CONFIG',
      `the value is ${data.length} bytes; a znode holds at most about 1 MiB (the server's jute.maxbuffer)`,
      { location: path },
    );
  }
  return data;
}

function memberOrder(name: string): number {
  const sequence = name.startsWith(MEMBER_PREFIX) ? name.slice(MEMBER_PREFIX.length) : '';
  return /^\d{10}$/.test(sequence) ? Number(sequence) : NaN;
}

function parseMember(name: string, path: string, data: Buffer | undefined): Member {
  const malformed = (why: string): ZooKeeperBackendError =>
    new ZooKeeperBackendError('ERR_MALFORMED_RECORD', `malformed member entry: ${why}`, { location: path });
  const order = memberOrder(name);
  if (Number.isNaN(order)) throw malformed(`the name is not ${MEMBER_PREFIX}<10-digit sequence>`);
  const info = parseMemberEntry(data?.toString('utf8') ?? '');
  if (typeof info === 'string') throw malformed(info);
  return { info, order, location: path };
}

function toRecord(path: string, data: Buffer | undefined, stat: zookeeper.Stat): VersionedRecord {
  return { value: data?.toString('utf8') ?? '', version: String(stat.version), location: path };
}

function toClaim(connection: ZkConnection, path: string, data: Buffer | undefined, stat: zookeeper.Stat): Claim {
  return { value: data?.toString('utf8') ?? '', mine: connection.ownsEphemeral(stat), location: path };
}
