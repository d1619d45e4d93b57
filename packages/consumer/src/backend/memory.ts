/**
 * MemoryBackend: an in-process {@link AllocatorBackend} for tests and single-process use. A {@link MemoryStore}
 * plays the server; every MemoryBackend on the same store is one client with its own sessions, so several
 * consumers in one process coordinate exactly as they would through ZooKeeper or etcd.
 */
import { performance } from 'node:perf_hooks';
import { AllocatorBackendBase, parseMemberEntry } from './base';
import { BackendErrorImpl } from './errors';
import type {
  AllocatorBackend,
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
} from './types';

/** The kinds of watch a {@link MemoryStore} delivers; used to aim {@link MemoryStore.dropWatchEvents}. */
export type MemoryWatchKind = 'members' | 'record' | 'claim';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Delay, in milliseconds, before each watch notification reaches its listener. Default 0 (next tick). */
  readonly watchDelay?: number;
}

/** Options of {@link MemoryStore.dropWatchEvents}. */
export interface DropWatchEventsOptions {
  /** How many change notifications to discard. */
  readonly count: number;
  /** Only notifications of this kind of watch. Default: any. */
  readonly kind?: MemoryWatchKind;
  /** Only notifications about this group. Default: any. */
  readonly group?: string;
}

/** Options of {@link MemoryBackend}. */
export interface MemoryBackendOptions {
  /** The shared "server". Backends that should see each other share one store. */
  readonly store: MemoryStore;
  /**
   * Milliseconds without contact after which the store expires a session (only happens while the backend is cut
   * off with {@link MemoryStore.cutOffSession}). Default 10000.
   */
  readonly sessionTimeout?: number;
}

const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
/** Heartbeats run more often than the contract's `sessionTimeout / 4`, so `lastContact` never looks stale. */
const HEARTBEATS_PER_SESSION_TIMEOUT = 5;
const ROOT = 'memory:/kiel/groups';

/**
 * The shared state of a group of {@link MemoryBackend}s: the in-process "server". Its public methods are the
 * fault-injection API for tests: expire a session, cut a client off, delay or drop watch notifications.
 *
 * @example
 * ```ts
 * const store = new MemoryStore();
 * const a = new MemoryBackend({ store });
 * const b = new MemoryBackend({ store });
 * await a.connect();
 * await b.connect();
 * await a.join('my-group', { id: 'a', host: 'localhost', pid: process.pid });
 * console.log(await b.members('my-group')); // [{ info: { id: 'a', ... }, order: 1, location: '...' }]
 * store.expireSession(a.sessionId!); // a emits `expired`; b sees a's member entry vanish
 * await Promise.all([a.close(), b.close()]);
 * ```
 */
export class MemoryStore {
  constructor(options: MemoryStoreOptions = {}) {
    const watchDelay = options.watchDelay ?? 0;
    checkDelay(watchDelay, 'watchDelay');
    cores.set(this, new StoreCore(watchDelay));
  }

  /** Ids of the sessions alive now, oldest first. */
  get sessionIds(): string[] {
    return [...core(this).sessions.keys()];
  }

  /**
   * Expires a session now, as a server does when a client goes silent: its member entries and claims vanish and
   * the client learns of it (`expired`) as soon as it can reach the store. Returns false if no such session lives.
   */
  expireSession(sessionId: string): boolean {
    return core(this).endSession(sessionId, { notifyClient: true });
  }

  /**
   * Cuts the client holding `sessionId` off from the store, as a network partition would: its calls reject with
   * `ERR_BACKEND_UNAVAILABLE`, it receives no watch notification, it emits `disconnected` at its next call or
   * heartbeat, and the store expires its session once `sessionTimeout` passes without contact.
   */
  cutOffSession(sessionId: string): void {
    core(this).clientOf(sessionId).cutOff = true;
  }

  /** Ends a {@link cutOffSession}: the client reconnects at once, to its old session if it is still alive. */
  restoreSession(sessionId: string): void {
    const client = core(this).clientOf(sessionId);
    client.cutOff = false;
    setImmediate(() => client.poke());
  }

  /** Sets the delay before each later watch notification reaches its listener. 0 means the next tick. */
  setWatchDelay(ms: number): void {
    checkDelay(ms, 'watch delay');
    core(this).watchDelay = ms;
  }

  /**
   * Discards the next `count` change notifications (matching `kind` and `group` if given), as a lost watch
   * event would. The listeners stay on the old state until the next change: this deliberately breaks the
   * level-triggered promise, to test that a consumer survives a backend that misses a change.
   */
  dropWatchEvents(options: DropWatchEventsOptions): void {
    if (!Number.isInteger(options.count) || options.count < 0) {
      throw new BackendErrorImpl('ERR_INVALID_CONFIG', `dropWatchEvents: count must be a non-negative integer`);
    }
    core(this).drops.push({ ...options, remaining: options.count });
  }
}

/**
 * An in-process {@link AllocatorBackend}. Implements the whole contract: ephemeral entries bound to the session,
 * compare-and-set versions, creation order, watches delivered asynchronously and in order
 * (`orderedWatchHistory`), typed errors. See {@link MemoryStore} for the fault-injection API and an example.
 */
export class MemoryBackend extends AllocatorBackendBase implements AllocatorBackend {
  readonly name = 'memory';
  readonly supports: BackendSupports = { orderedWatchHistory: true, weights: true, auth: false };
  readonly sessionTimeout: number;

  private readonly core: StoreCore;
  private readonly client: ClientHandle;
  private readonly subscriptions = new Set<Subscription>();
  private currentSession: string | undefined;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(options: MemoryBackendOptions) {
    super();
    const store = (options as Partial<MemoryBackendOptions> | undefined)?.store;
    if (!(store instanceof MemoryStore)) {
      throw new BackendErrorImpl('ERR_INVALID_CONFIG', 'MemoryBackend: `store` must be a MemoryStore');
    }
    const sessionTimeout = options.sessionTimeout ?? DEFAULT_SESSION_TIMEOUT_MS;
    if (!Number.isInteger(sessionTimeout) || sessionTimeout < 10) {
      throw new BackendErrorImpl(
        'ERR_INVALID_CONFIG',
        `MemoryBackend: sessionTimeout must be an integer of at least 10 ms, got ${String(sessionTimeout)}`,
      );
    }
    this.sessionTimeout = sessionTimeout;
    this.core = core(store);
    this.client = {
      cutOff: false,
      onExpired: (sessionId) => this.sessionLost(sessionId),
      poke: () => this.beat(),
    };
  }

  /** The id of the current session, if any: what {@link MemoryStore.expireSession} takes. */
  get sessionId(): string | undefined {
    return this.currentSession;
  }

  async connect(): Promise<void> {
    switch (this.currentState) {
      case 'closed':
        throw closedError();
      case 'connected':
      case 'disconnected':
        // Check with a round-trip rather than trust the last heartbeat: connect() resolving means "reachable now".
        this.beat();
        if (this.state === 'connected') return;
        if (this.state === 'disconnected') throw unreachableError();
        break;
    }
    if (this.client.cutOff) throw unreachableError();
    const sessionId = this.core.openSession(this.client, this.sessionTimeout);
    this.currentSession = sessionId;
    this.currentState = 'connected';
    this.contactAt = performance.now();
    this.startHeartbeat();
    this.emit('connected', { sessionId, newSession: true });
    this.resync();
  }

  async close(): Promise<void> {
    if (this.currentState === 'closed') return;
    const sessionId = this.currentSession;
    const wasLive = this.currentState === 'connected' || this.currentState === 'disconnected';
    this.currentState = 'closed';
    this.stopHeartbeat();
    for (const subscription of this.subscriptions) subscription.observer.close();
    this.subscriptions.clear();
    // A client cut off from the store cannot end its session: the store expires it after sessionTimeout.
    if (wasLive && sessionId !== undefined && !this.client.cutOff) {
      this.core.endSession(sessionId, { notifyClient: false });
    }
    this.core.forgetClient(this.client);
  }

  async join(group: string, info: MemberInfo): Promise<Member> {
    this.checkGroup(group);
    const sessionId = this.contact();
    const entry = this.core.join(sessionId, group, String(info?.id), JSON.stringify(info));
    return { info, order: entry.order, location: entry.location };
  }

  async leave(group: string): Promise<void> {
    this.checkGroup(group);
    this.core.leave(this.contact(), group);
  }

  async members(group: string): Promise<readonly Member[]> {
    this.checkGroup(group);
    this.contact();
    return this.parseMembers(this.core.snapshot({ group, kind: 'members', key: '' }) as MembersSnapshot);
  }

  watchMembers(group: string, listener: MembersListener): Unsubscribe {
    this.checkGroup(group);
    return this.subscribe({ group, kind: 'members', key: '' }, (snapshot) =>
      listener(this.parseMembers(snapshot as MembersSnapshot)),
    );
  }

  async readRecord(group: string, name: RecordName): Promise<VersionedRecord | null> {
    this.checkGroup(group);
    this.contact();
    return this.core.snapshot({ group, kind: 'record', key: name }) as VersionedRecord | null;
  }

  async writeRecord(
    group: string,
    name: RecordName,
    value: string,
    expected: RecordVersion | null,
  ): Promise<RecordVersion | null> {
    this.checkGroup(group);
    this.checkValue(value, name);
    this.contact();
    return this.core.writeRecord(group, name, value, expected);
  }

  watchRecord(group: string, name: RecordName, listener: RecordListener): Unsubscribe {
    this.checkGroup(group);
    return this.subscribe({ group, kind: 'record', key: name }, (snapshot) =>
      listener(snapshot as VersionedRecord | null),
    );
  }

  async claim(group: string, partition: string, value: string): Promise<boolean> {
    this.checkGroup(group);
    this.checkPartition(partition);
    this.checkValue(value, partition);
    return this.core.claim(this.contact(), group, partition, value);
  }

  async release(group: string, partition: string): Promise<void> {
    this.checkGroup(group);
    this.checkPartition(partition);
    this.core.release(this.contact(), group, partition);
  }

  async readClaim(group: string, partition: string): Promise<Claim | null> {
    this.checkGroup(group);
    this.checkPartition(partition);
    this.contact();
    return this.toClaim(this.core.snapshot({ group, kind: 'claim', key: partition }) as ClaimSnapshot);
  }

  async claims(group: string): Promise<ReadonlyMap<string, Claim>> {
    this.checkGroup(group);
    this.contact();
    const result = new Map<string, Claim>();
    for (const [partition, stored] of this.core.claimsOf(group)) result.set(partition, this.toClaim(stored)!);
    return result;
  }

  watchClaim(group: string, partition: string, listener: ClaimListener): Unsubscribe {
    this.checkGroup(group);
    this.checkPartition(partition);
    return this.subscribe({ group, kind: 'claim', key: partition }, (snapshot) =>
      listener(this.toClaim(snapshot as ClaimSnapshot)),
    );
  }

  async writeMarker(group: string, partition: string, value: string | null): Promise<void> {
    this.checkGroup(group);
    this.checkPartition(partition);
    if (value !== null) this.checkValue(value, partition);
    this.contact();
    this.core.writeMarker(group, partition, value);
  }

  async readMarker(group: string, partition: string): Promise<string | null> {
    this.checkGroup(group);
    this.checkPartition(partition);
    this.contact();
    return this.core.markersOf(group).get(partition) ?? null;
  }

  async markers(group: string): Promise<ReadonlyMap<string, string>> {
    this.checkGroup(group);
    this.contact();
    return this.core.markersOf(group);
  }

  /** One round-trip to the store: the gate of every call. Returns the live session id or throws a BackendError. */
  private contact(): string {
    switch (this.currentState) {
      case 'closed':
        throw closedError();
      case 'expired':
        throw expiredError();
      case 'idle':
      case 'connecting':
        throw new BackendErrorImpl('ERR_BACKEND_UNAVAILABLE', 'MemoryBackend is not connected: call connect() first');
    }
    const sessionId = this.currentSession!;
    const outcome = this.core.contact(this.client, sessionId);
    if (outcome === 'unreachable') {
      this.disconnect('the memory store cut this client off');
      throw unreachableError();
    }
    if (outcome === 'expired') {
      this.sessionLost(sessionId);
      throw expiredError();
    }
    this.contactAt = performance.now();
    if (this.currentState === 'disconnected') {
      this.currentState = 'connected';
      this.emit('connected', { sessionId, newSession: false });
      this.resync();
    }
    return sessionId;
  }

  /** A heartbeat: a round-trip whose failure only changes the state (and emits the matching event). */
  private beat(): void {
    if (this.currentState !== 'connected' && this.currentState !== 'disconnected') return;
    try {
      this.contact();
    } catch {
      // contact() already moved to `disconnected` or `expired` and said so.
    }
  }

  private disconnect(reason: string): void {
    if (this.currentState !== 'connected') return;
    this.currentState = 'disconnected';
    this.emit('disconnected', { reason });
  }

  private sessionLost(sessionId: string): void {
    if (sessionId !== this.currentSession) return;
    if (this.currentState !== 'connected' && this.currentState !== 'disconnected') return;
    this.currentState = 'expired';
    this.stopHeartbeat();
    this.emit('expired', { sessionId });
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const every = Math.max(1, Math.floor(this.sessionTimeout / HEARTBEATS_PER_SESSION_TIMEOUT));
    this.heartbeat = setInterval(() => this.beat(), every);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== undefined) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  private subscribe(topic: Topic, deliver: (snapshot: Snapshot) => void): Unsubscribe {
    if (this.currentState === 'closed') return () => undefined;
    const observer = this.core.observe(topic, this.client, (snapshot) => {
      // No notification reaches a client without a live session; it gets the current state once reconnected.
      if (this.currentState !== 'connected') return;
      this.deliver(topicLocation(topic), () => deliver(snapshot));
    });
    const subscription: Subscription = { observer };
    this.subscriptions.add(subscription);
    if (this.currentState === 'connected') observer.resync();
    return () => {
      observer.close();
      this.subscriptions.delete(subscription);
    };
  }

  /** Delivers the current state to every subscription again, after (re)connecting. */
  private resync(): void {
    for (const subscription of this.subscriptions) subscription.observer.resync();
  }

  private parseMembers(snapshot: MembersSnapshot): Member[] {
    const members: Member[] = [];
    for (const entry of snapshot) {
      const info = parseMemberEntry(entry.raw);
      if (typeof info === 'string') {
        this.report(
          new BackendErrorImpl(
            'ERR_MALFORMED_RECORD',
            `malformed member entry at ${entry.location} (${info}): ${entry.raw}`,
            {
              location: entry.location,
            },
          ),
        );
        continue;
      }
      members.push({ info, order: entry.order, location: entry.location });
    }
    return members;
  }

  private toClaim(stored: ClaimSnapshot): Claim | null {
    if (stored === null) return null;
    return { value: stored.value, mine: stored.owner === this.currentSession, location: stored.location };
  }
}

// --- The store's internals: not exported from the package. ---

interface ClientHandle {
  /** Set by the store's fault injection: the client cannot reach the store. */
  cutOff: boolean;
  onExpired(sessionId: string): void;
  /** Asks the client to make a round-trip now (after its connection is restored). */
  poke(): void;
}

interface Topic {
  readonly group: string;
  readonly kind: MemoryWatchKind;
  /** The record name or partition; empty for members. */
  readonly key: string;
}

interface StoredMember {
  readonly raw: string;
  readonly memberId: string;
  readonly order: number;
  readonly session: string;
  readonly location: string;
}

interface StoredRecord {
  readonly value: string;
  readonly version: string;
  readonly location: string;
}

interface StoredClaim {
  readonly value: string;
  readonly owner: string;
  readonly location: string;
}

interface GroupData {
  readonly members: Map<string, StoredMember>;
  readonly records: Map<string, StoredRecord>;
  readonly claims: Map<string, StoredClaim>;
  readonly markers: Map<string, string>;
}

interface SessionData {
  readonly client: ClientHandle;
  readonly expiry: NodeJS.Timeout;
}

type MembersSnapshot = ReadonlyArray<Pick<StoredMember, 'raw' | 'order' | 'location'>>;
type ClaimSnapshot = StoredClaim | null;
type Snapshot = MembersSnapshot | StoredRecord | ClaimSnapshot;

interface Subscription {
  readonly observer: Observer;
}

interface DropRule extends DropWatchEventsOptions {
  remaining: number;
}

const cores = new WeakMap<MemoryStore, StoreCore>();

function core(store: MemoryStore): StoreCore {
  return cores.get(store)!;
}

class StoreCore {
  readonly sessions = new Map<string, SessionData>();
  readonly drops: DropRule[] = [];
  private readonly groups = new Map<string, GroupData>();
  private readonly observers = new Map<string, Set<Observer>>();
  /** Remembers which client held each session, so that a cut-off client can be found by an expired session id. */
  private readonly clients = new Map<string, ClientHandle>();
  private nextSession = 1;
  /** One counter for member orders and record versions, like etcd's revision: strictly increasing. */
  private revision = 0;

  constructor(public watchDelay: number) {}

  openSession(client: ClientHandle, timeoutMs: number): string {
    const sessionId = `memory-session-${this.nextSession++}`;
    const expiry = setTimeout(() => this.endSession(sessionId, { notifyClient: true }), timeoutMs);
    // The store is the server: its clock must not keep the process alive on its own.
    expiry.unref();
    this.sessions.set(sessionId, { client, expiry });
    this.clients.set(sessionId, client);
    return sessionId;
  }

  clientOf(sessionId: string): ClientHandle {
    const client = this.clients.get(sessionId);
    if (client === undefined) {
      throw new BackendErrorImpl('ERR_INVALID_CONFIG', `MemoryStore: no client ever held session ${sessionId}`);
    }
    return client;
  }

  forgetClient(client: ClientHandle): void {
    for (const [sessionId, holder] of this.clients) {
      if (holder === client && !this.sessions.has(sessionId)) this.clients.delete(sessionId);
    }
  }

  contact(client: ClientHandle, sessionId: string): 'ok' | 'unreachable' | 'expired' {
    if (client.cutOff) return 'unreachable';
    const session = this.sessions.get(sessionId);
    if (session === undefined) return 'expired';
    session.expiry.refresh();
    return 'ok';
  }

  endSession(sessionId: string, options: { notifyClient: boolean }): boolean {
    const session = this.sessions.get(sessionId);
    if (session === undefined) return false;
    clearTimeout(session.expiry);
    this.sessions.delete(sessionId);
    for (const [group, data] of this.groups) {
      let membersChanged = false;
      for (const [key, member] of data.members) {
        if (member.session !== sessionId) continue;
        data.members.delete(key);
        membersChanged = true;
      }
      if (membersChanged) this.notify({ group, kind: 'members', key: '' });
      for (const [partition, claim] of data.claims) {
        if (claim.owner !== sessionId) continue;
        data.claims.delete(partition);
        this.notify({ group, kind: 'claim', key: partition });
      }
    }
    const client = session.client;
    if (options.notifyClient) {
      // A client that is cut off hears of the expiry only when it reaches the store again (at its next contact).
      setImmediate(() => {
        if (!client.cutOff) client.onExpired(sessionId);
      });
    } else {
      this.clients.delete(sessionId);
    }
    return true;
  }

  join(sessionId: string, group: string, memberId: string, raw: string): StoredMember {
    const data = this.group(group);
    for (const member of data.members.values()) {
      if (member.session === sessionId && member.memberId === memberId) return member;
    }
    const order = ++this.revision;
    const name = `${memberId}-${String(order).padStart(10, '0')}`;
    const entry: StoredMember = {
      raw,
      memberId,
      order,
      session: sessionId,
      location: `${ROOT}/${group}/members/${name}`,
    };
    data.members.set(name, entry);
    this.notify({ group, kind: 'members', key: '' });
    return entry;
  }

  leave(sessionId: string, group: string): void {
    const data = this.groups.get(group);
    if (data === undefined) return;
    let changed = false;
    for (const [name, member] of data.members) {
      if (member.session !== sessionId) continue;
      data.members.delete(name);
      changed = true;
    }
    if (changed) this.notify({ group, kind: 'members', key: '' });
  }

  writeRecord(group: string, name: RecordName, value: string, expected: RecordVersion | null): RecordVersion | null {
    const data = this.group(group);
    const current = data.records.get(name);
    if ((current?.version ?? null) !== expected) return null;
    const version = String(++this.revision);
    data.records.set(name, { value, version, location: `${ROOT}/${group}/${name}` });
    this.notify({ group, kind: 'record', key: name });
    return version;
  }

  claim(sessionId: string, group: string, partition: string, value: string): boolean {
    const data = this.group(group);
    const current = data.claims.get(partition);
    if (current !== undefined) return current.owner === sessionId;
    data.claims.set(partition, { value, owner: sessionId, location: `${ROOT}/${group}/owners/${partition}` });
    this.notify({ group, kind: 'claim', key: partition });
    return true;
  }

  release(sessionId: string, group: string, partition: string): void {
    const data = this.groups.get(group);
    if (data?.claims.get(partition)?.owner !== sessionId) return;
    data.claims.delete(partition);
    this.notify({ group, kind: 'claim', key: partition });
  }

  writeMarker(group: string, partition: string, value: string | null): void {
    const data = this.group(group);
    if (value === null) data.markers.delete(partition);
    else data.markers.set(partition, value);
  }

  markersOf(group: string): ReadonlyMap<string, string> {
    return new Map([...(this.groups.get(group)?.markers ?? [])].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  claimsOf(group: string): ReadonlyMap<string, StoredClaim> {
    return new Map(this.groups.get(group)?.claims ?? []);
  }

  /** The current state of a topic, as an immutable value. */
  snapshot(topic: Topic): Snapshot {
    const data = this.groups.get(topic.group);
    switch (topic.kind) {
      case 'members':
        return [...(data?.members.values() ?? [])]
          .sort((a, b) => a.order - b.order)
          .map(({ raw, order, location }) => ({ raw, order, location }));
      case 'record':
        return data?.records.get(topic.key) ?? null;
      case 'claim':
        return data?.claims.get(topic.key) ?? null;
    }
  }

  observe(topic: Topic, client: ClientHandle, deliver: (snapshot: Snapshot) => void): Observer {
    const key = topicKey(topic);
    let set = this.observers.get(key);
    if (set === undefined) this.observers.set(key, (set = new Set()));
    const observers = set;
    const observer = new Observer(this, topic, client, deliver, () => {
      observers.delete(observer);
      if (observers.size === 0 && this.observers.get(key) === observers) this.observers.delete(key);
    });
    observers.add(observer);
    return observer;
  }

  private notify(topic: Topic): void {
    const observers = this.observers.get(topicKey(topic));
    if (observers === undefined) return;
    for (const observer of observers) {
      if (this.dropped(topic)) continue;
      observer.enqueue(this.snapshot(topic));
    }
  }

  private dropped(topic: Topic): boolean {
    const rule = this.drops.find(
      (r) =>
        r.remaining > 0 && (r.kind === undefined || r.kind === topic.kind) && (r.group ?? topic.group) === topic.group,
    );
    if (rule === undefined) return false;
    rule.remaining--;
    if (rule.remaining === 0) this.drops.splice(this.drops.indexOf(rule), 1);
    return true;
  }

  private group(name: string): GroupData {
    let data = this.groups.get(name);
    if (data === undefined) {
      data = { members: new Map(), records: new Map(), claims: new Map(), markers: new Map() };
      this.groups.set(name, data);
    }
    return data;
  }
}

/** One listener's delivery queue: in order, each after the store's watch delay, never inside the caller's call. */
class Observer {
  private readonly queue: Array<{ snapshot: Snapshot; due: number }> = [];
  private timer: NodeJS.Timeout | NodeJS.Immediate | undefined;
  private closed = false;

  constructor(
    private readonly store: StoreCore,
    private readonly topic: Topic,
    private readonly client: ClientHandle,
    private readonly deliver: (snapshot: Snapshot) => void,
    private readonly onClose: () => void,
  ) {}

  /** Queues the current state (on subscription and after reconnecting). */
  resync(): void {
    this.enqueue(this.store.snapshot(this.topic));
  }

  enqueue(snapshot: Snapshot): void {
    if (this.closed) return;
    this.queue.push({ snapshot, due: performance.now() + this.store.watchDelay });
    if (this.timer === undefined) this.schedule();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.cancel();
    this.onClose();
  }

  private schedule(): void {
    const wait = this.queue[0].due - performance.now();
    this.timer = wait > 0 ? setTimeout(() => this.flush(), wait) : setImmediate(() => this.flush());
  }

  private flush(): void {
    this.timer = undefined;
    while (!this.closed && this.queue.length > 0 && this.queue[0].due <= performance.now()) {
      const { snapshot } = this.queue.shift()!;
      // A cut-off client hears nothing; it reads the current state again once it reconnects.
      if (!this.client.cutOff) this.deliver(snapshot);
    }
    if (!this.closed && this.queue.length > 0) this.schedule();
  }

  private cancel(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer as NodeJS.Timeout);
    clearImmediate(this.timer as NodeJS.Immediate);
    this.timer = undefined;
  }
}

function topicKey(topic: Topic): string {
  return `${topic.group}\u0000${topic.kind}\u0000${topic.key}`;
}

function topicLocation(topic: Topic): string {
  switch (topic.kind) {
    case 'members':
      return `${ROOT}/${topic.group}/members`;
    case 'record':
      return `${ROOT}/${topic.group}/${topic.key}`;
    case 'claim':
      return `${ROOT}/${topic.group}/owners/${topic.key}`;
  }
}

function checkDelay(ms: number, what: string): void {
  if (!Number.isFinite(ms) || ms < 0) {
    throw new BackendErrorImpl('ERR_INVALID_CONFIG', `MemoryStore: ${what} must be a non-negative number of ms`);
  }
}

function closedError(): BackendErrorImpl {
  return new BackendErrorImpl('ERR_BACKEND_CLOSED', 'MemoryBackend is closed');
}

function expiredError(): BackendErrorImpl {
  return new BackendErrorImpl(
    'ERR_SESSION_EXPIRED',
    'the MemoryBackend session expired: call connect() to open a new one',
  );
}

function unreachableError(): BackendErrorImpl {
  return new BackendErrorImpl('ERR_BACKEND_UNAVAILABLE', 'the memory store cannot be reached (cut off)');
}
