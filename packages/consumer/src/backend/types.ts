/**
 * The allocator backend interface: the small set of I/O primitives a coordination service must provide so that
 * the GroupedConsumer can share partitions among the members of a group.
 *
 * A backend does I/O only. Validation, lifecycle, leader election, the rebalance algorithm and the handoff live
 * once, in @kiel/consumer. Backends import only these types from @kiel/consumer (`import type`), never values.
 *
 * Data model, per group `G` (ZooKeeper paths shown; etcd uses the same names as keys under its prefix):
 *
 * | what                  | where                               | lifetime                          |
 * | --------------------- | ----------------------------------- | --------------------------------- |
 * | members               | `<root>/groups/G/members/<entry>`   | bound to the session / lease      |
 * | shared partition set  | `<root>/groups/G/partitions`        | persistent, compare-and-set       |
 * | published allocation  | `<root>/groups/G/allocation`        | persistent, compare-and-set       |
 * | operator control      | `<root>/groups/G/control`           | persistent, compare-and-set       |
 * | ownership claims      | `<root>/groups/G/owners/<t:p>`      | bound to the session / lease      |
 * | partition markers     | `<root>/groups/G/markers/<t:p>`     | persistent, last write wins       |
 *
 * Sessions. A backend instance holds at most one session (ZooKeeper session, etcd lease) at a time. Everything
 * ephemeral it creates (member entries, claims) is bound to that session and vanishes when the session ends,
 * whether by `close()`, by expiry, or by the server losing track of it.
 *
 * Failure contract, common to every method:
 * - No call hangs forever: each completes or rejects within the backend's operation timeout.
 * - While the connection is down but the session may still be alive, calls reject with a retriable
 *   `ERR_BACKEND_UNAVAILABLE` (or complete late if the client queued them; either is allowed, within the timeout).
 * - After the session has expired, calls that touch ephemeral state reject with `ERR_SESSION_EXPIRED` until
 *   `connect()` opens a new session. Reads of persistent records may succeed on the new session.
 * - Errors are objects with a stable `code` (a {@link BackendErrorCode}) and a `retriable` flag. Callers check
 *   `code`, never `instanceof`.
 */

/** Stable error codes every backend uses for the errors it raises. */
export type BackendErrorCode =
  /** A constructor option is invalid (empty or malformed host list, bad timeout, bad prefix). Not retriable. */
  | 'ERR_INVALID_CONFIG'
  /** The servers cannot be reached, or the connection dropped. Retriable. */
  | 'ERR_BACKEND_UNAVAILABLE'
  /** An operation did not complete within the operation timeout. Retriable. */
  | 'ERR_BACKEND_TIMEOUT'
  /** The session (or lease) is gone; ephemeral state was lost. Retriable by opening a new session. */
  | 'ERR_SESSION_EXPIRED'
  /** Authentication failed or the credentials lack permission. Not retriable. */
  | 'ERR_BACKEND_AUTH'
  /** Data found in the backend does not parse or has the wrong shape; the error names its path or key. */
  | 'ERR_MALFORMED_RECORD'
  /** The backend was closed by its owner. Not retriable. */
  | 'ERR_BACKEND_CLOSED';

/** The error shape backends raise. Each backend package has its own class implementing it. */
export interface BackendError extends Error {
  readonly code: BackendErrorCode;
  readonly retriable: boolean;
  /** The path or key the error concerns, when there is one. */
  readonly location?: string;
}

/** What a member publishes about itself when it joins. Stored as JSON in its member entry. */
export interface MemberInfo {
  /** Unique member id, conventionally `host:pid:uuid`. */
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  /** Relative capacity for weighted strategies. Absent means 1. */
  readonly weight?: number;
  /**
   * True when `id` is a stable name (the consumer's `instanceId`) that survives restarts, rather than one made up
   * for this join. Backends store it and list it back. Absent means false.
   */
  readonly named?: boolean;
}

/** A live member of a group, as listed by the backend. */
export interface Member {
  readonly info: MemberInfo;
  /**
   * Creation order among the group's entries: the ZooKeeper sequence number or the etcd create revision.
   * Strictly increasing with creation; the live member with the lowest `order` is the leader.
   */
  readonly order: number;
  /** Where the entry lives (znode path or etcd key), for error messages and debugging. */
  readonly location: string;
}

/**
 * The shared records of a group, each updated by compare-and-set: the partition set, the published allocation, and
 * `control` (the freeze flag and graceful-leave notices of named members, written by operators and leaving members).
 */
export type RecordName = 'partitions' | 'allocation' | 'control';

/**
 * An opaque version token for compare-and-set: the znode version (ZooKeeper) or the key's mod revision (etcd),
 * rendered as a string. Only equality is meaningful.
 */
export type RecordVersion = string;

/** A record as read from the backend: raw text (JSON written by the consumer) plus its version. */
export interface VersionedRecord {
  readonly value: string;
  readonly version: RecordVersion;
  /** Where the record lives (znode path or etcd key), so that a malformed value can be reported precisely. */
  readonly location: string;
}

/** An ownership claim as stored: raw text (JSON `{member, generation}` written by the consumer). */
export interface Claim {
  readonly value: string;
  /** True when the claim was created by this backend instance's current session. */
  readonly mine: boolean;
  readonly location: string;
}

/** Stops a watch. Idempotent. */
export type Unsubscribe = () => void;

/** Optional abilities. The conformance suite skips only the cases whose ability is declared absent. */
export interface BackendSupports {
  /**
   * Watches deliver every committed state in order (no coalescing). When false, a watch may skip intermediate
   * states but always ends on the latest one (level-triggered), which is all the consumer relies on.
   */
  readonly orderedWatchHistory: boolean;
  /** Members can carry a weight (stored in their entry). */
  readonly weights: boolean;
  /** Access control / authentication is available (digest ACLs, etcd users and roles). */
  readonly auth: boolean;
}

/** Session states a backend moves through. */
export type BackendState = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'expired' | 'closed';

/** Events every backend emits. */
export interface AllocatorBackendEvents {
  /** A session is established or re-established with the servers. Processing may resume if it was fenced. */
  connected: [info: { readonly sessionId: string; readonly newSession: boolean }];
  /**
   * Contact with the servers was lost; the session may still be alive. The consumer starts its fencing clock.
   * Backends must emit this even when the underlying client does not notice (e.g. a frozen server): they run
   * their own liveness checks (see {@link AllocatorBackend.lastContact}).
   */
  disconnected: [info: { readonly reason: string }];
  /**
   * The session or lease is gone and every ephemeral entry of this instance with it: stop processing at once.
   * The consumer may call `connect()` to open a new session and rejoin as a new member.
   */
  expired: [info: { readonly sessionId: string }];
  /**
   * A problem that is not the answer to a call: a watch that failed, a malformed entry found while listing.
   * Listeners should log or surface it; the backend keeps going.
   */
  error: [error: BackendError];
}

/** Listener of a group's live members. Always receives the full current list, sorted by `order`. */
export type MembersListener = (members: readonly Member[]) => void;
/** Listener of one record. Receives the current record, or null when it does not exist. */
export type RecordListener = (record: VersionedRecord | null) => void;
/** Listener of one partition's claim. Receives the current claim, or null when none exists. */
export type ClaimListener = (claim: Claim | null) => void;

/**
 * The backend interface. Implementations: MemoryBackend (in @kiel/consumer), ZooKeeperBackend
 * (@kiel/allocator-zk), EtcdBackend (@kiel/allocator-etcd). Every implementation runs the conformance suite in
 * `@kiel/consumer/testing` against its real server.
 *
 * Watch semantics (all `watch*` methods):
 * - On subscription, the listener is called once with the current state (asynchronously, never inside the
 *   `watch*` call itself).
 * - After that, it is called after every change; changes may be coalesced unless `supports.orderedWatchHistory`,
 *   but the last call always reflects the latest state: no change is ever missed for good. A watch re-arms
 *   itself after it fires and re-reads, so a change between firing and re-arming is not lost.
 * - Subscriptions survive disconnections and session expiry: after (re)connecting, the backend re-arms them and
 *   delivers the current state again. Listeners must therefore be idempotent.
 * - Listener exceptions are caught and reported through the `error` event; they never break the backend.
 */
export interface AllocatorBackend {
  /** Short name for logs and errors, e.g. `zookeeper`, `etcd`, `memory`. */
  readonly name: string;
  readonly supports: BackendSupports;
  readonly state: BackendState;
  /**
   * The session timeout or lease TTL in milliseconds, as granted by the server once connected (the requested
   * value before). The consumer's default fencing timeout is 2/3 of it.
   */
  readonly sessionTimeout: number;
  /**
   * `performance.now()` of the last successful round-trip with the servers. Backends make a round-trip at
   * least every `sessionTimeout / 4` while connected, so that a consumer can fence itself when
   * `performance.now() - lastContact` exceeds its fencing timeout, whatever the client library reports.
   */
  readonly lastContact: number;

  /**
   * Opens a session. Resolves once connected; idempotent while connected. After `expired`, opens a new session
   * (ephemeral entries of the old one are gone). Rejects with `ERR_BACKEND_UNAVAILABLE` if the servers cannot
   * be reached within the connect timeout, `ERR_BACKEND_AUTH` on bad credentials, `ERR_BACKEND_CLOSED` after
   * `close()`.
   */
  connect(): Promise<void>;
  /**
   * Ends the session (ephemeral entries vanish promptly) and releases every resource: timers, sockets,
   * subscriptions. Idempotent. Never rejects.
   */
  close(): Promise<void>;

  /**
   * Registers this session as a member of `group`, with an ephemeral entry holding `info`. Creates the group's
   * parent paths as needed. Idempotent for the same session and member id: a retry after a lost reply returns
   * the existing entry, never a second one. Resolves with the entry, including its creation `order`.
   */
  join(group: string, info: MemberInfo): Promise<Member>;
  /** Removes this session's member entry for `group`. Resolves if there was none. */
  leave(group: string): Promise<void>;
  /**
   * Lists the live members of `group`, sorted by `order`. Entries that cannot be parsed are left out and
   * reported through the `error` event (`ERR_MALFORMED_RECORD`, naming the entry).
   */
  members(group: string): Promise<readonly Member[]>;
  watchMembers(group: string, listener: MembersListener): Unsubscribe;

  /** Reads a shared record; null when it does not exist yet. */
  readRecord(group: string, name: RecordName): Promise<VersionedRecord | null>;
  /**
   * Compare-and-set. Writes `value` if the record's current version is `expected`, or, with `expected === null`,
   * creates it if it does not exist. Resolves with the new version, or null if the condition failed (someone
   * else wrote first); it never overwrites a record it did not expect.
   */
  writeRecord(
    group: string,
    name: RecordName,
    value: string,
    expected: RecordVersion | null,
  ): Promise<RecordVersion | null>;
  watchRecord(group: string, name: RecordName, listener: RecordListener): Unsubscribe;

  /**
   * Creates an exclusive claim on `partition` ("topic:partition"), bound to this session. Resolves true if this
   * session now holds it (including a retry of a create that already succeeded: ownership is checked against
   * the session, so a retried create can never leave a stray claim), false if another session holds it.
   */
  claim(group: string, partition: string, value: string): Promise<boolean>;
  /** Deletes the claim on `partition` only if this session holds it. Resolves either way. */
  release(group: string, partition: string): Promise<void>;
  /** Reads the claim on `partition`; null when unclaimed. */
  readClaim(group: string, partition: string): Promise<Claim | null>;
  /** Lists every claim of the group, keyed by partition id. */
  claims(group: string): Promise<ReadonlyMap<string, Claim>>;
  watchClaim(group: string, partition: string, listener: ClaimListener): Unsubscribe;

  /**
   * Writes the marker of `partition` ("topic:partition"): a small persistent value per partition that outlives the
   * session which wrote it, so that the partition's next owner (or an inspector) can read it: the in-flight offset of
   * poison-message detection, a stalled partition's report. Unconditional, the last write wins; `null` deletes it
   * (resolves if there was none). Creates the parent paths as needed.
   */
  writeMarker(group: string, partition: string, value: string | null): Promise<void>;
  /** Reads the marker of `partition`, raw; null when there is none. */
  readMarker(group: string, partition: string): Promise<string | null>;
  /** Lists every marker of the group, raw, keyed by partition id. */
  markers(group: string): Promise<ReadonlyMap<string, string>>;

  on<E extends keyof AllocatorBackendEvents>(event: E, listener: (...args: AllocatorBackendEvents[E]) => void): this;
  off<E extends keyof AllocatorBackendEvents>(event: E, listener: (...args: AllocatorBackendEvents[E]) => void): this;
}
