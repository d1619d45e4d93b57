// The options of the conformance suite: what a backend's test passes in (its factory, its test runner, optional
// hooks that expire a session, refuse credentials or inject faults into a private server), and their defaults.
import type { AllocatorBackend, BackendSupports } from '../backend/types';

/**
 * The matchers the suite uses, as a structural type: Jest's `expect` fits it, and so does any runner whose
 * `expect` has these methods with Jest's meaning.
 */
export interface SuiteMatchers extends SuiteMatcherMethods {
  readonly not: SuiteMatcherMethods;
}

/** The matcher methods of {@link SuiteMatchers}, which `not` negates. */
export interface SuiteMatcherMethods {
  toBe(expected: unknown): void;
  toEqual(expected: unknown): void;
  toMatchObject(expected: object): void;
  toBeNull(): void;
  toBeGreaterThan(expected: number): void;
  toBeGreaterThanOrEqual(expected: number): void;
  toBeLessThan(expected: number): void;
  toBeLessThanOrEqual(expected: number): void;
  toContain(expected: unknown): void;
  toHaveLength(expected: number): void;
  toBeInstanceOf(expected: unknown): void;
  toMatch(expected: RegExp | string): void;
}

/** A describe block, with the `skip` the suite uses to show a case it cannot run and why. */
export interface SuiteDescribe {
  (name: string, body: () => void): void;
  skip(name: string, body: () => void): void;
}

/**
 * The test runner's functions, passed in so that `@kiel/consumer` does not depend on one: with Jest,
 * `{ describe, it, expect, afterEach }` from `@jest/globals` (or Jest's globals).
 */
export interface SuiteRunner {
  readonly describe: SuiteDescribe;
  readonly it: (name: string, body: () => Promise<void>, timeoutMs?: number) => void;
  readonly expect: (actual: unknown) => SuiteMatchers;
  /** Runs after each case: the suite closes what the case opened. */
  readonly afterEach: (body: () => Promise<void>) => void;
}

/** Time limits of the conformance suite, in milliseconds. Raise them for slow servers, never to hide a bug. */
export interface AllocatorBackendSuiteTimeouts {
  /** How long a watch may take to deliver a change to another session. Default 5000. */
  readonly watch?: number;
  /** How long, after `expireSession` resolves, until `expired` fires and the ephemerals are gone. Default 30000. */
  readonly expiry?: number;
  /** The bound on one test case, on top of which expiry cases add `expiry`. Default 30000. */
  readonly test?: number;
}

/** What `faults.factory` and `faults.partition.factory` are asked for: the timeouts of the session to open. */
export interface FaultBackendOptions {
  /** The session timeout (ZooKeeper) or lease TTL (etcd) to request, in milliseconds. */
  readonly sessionTimeout: number;
  /** How long `connect()` may wait for the server before it rejects with `ERR_BACKEND_UNAVAILABLE`, in ms. */
  readonly connectTimeout: number;
}

/**
 * Bounds of "a freeze shorter than the session timeout", in milliseconds. The freeze lasts until the backend has
 * reported `disconnected` and a call made during the freeze has failed; the session must survive it.
 */
export interface ShortFreezeBounds {
  /** Session timeout asked of `faults.factory`. Default 6000. */
  readonly sessionTimeout?: number;
  /** Connect timeout asked of `faults.factory`; `connect()` during the freeze waits at most this long. Default 5000. */
  readonly connectTimeout?: number;
  /** `disconnected` must fire within this time of the freeze. Default `sessionTimeout / 2`. */
  readonly disconnectedWithin?: number;
  /**
   * When set: the silence (`performance.now() - lastContact`) the backend waits for before it reports
   * `disconnected`, checked as a lower bound when the report comes. Unset, not checked.
   */
  readonly silenceBeforeDisconnected?: number;
  /** When set: the `reason` of the `disconnected` event must match it. Unset: any non-empty reason. */
  readonly disconnectedReason?: RegExp;
  /** A call made during the freeze rejects (`ERR_BACKEND_TIMEOUT`, retriable) within this time. Default 5500. */
  readonly callFailsWithin?: number;
  /** After the resume, `connect()` resolves on the same session within this time. Default `sessionTimeout`. */
  readonly reconnectedWithin?: number;
  /** Once reconnected, `lastContact` is at most this old. Default `sessionTimeout / 2`. */
  readonly contactWithin?: number;
}

/**
 * Bounds of "a freeze longer than the session timeout", in milliseconds: the backend reports `disconnected`, then,
 * on its own clock, `expired`; after the resume it opens a new session and the old one's entries are gone.
 */
export interface LongFreezeBounds {
  /** Session timeout asked of `faults.factory`. Default 3000. */
  readonly sessionTimeout?: number;
  /** Connect timeout asked of `faults.factory`. Default 2000. */
  readonly connectTimeout?: number;
  /** `disconnected` must fire within this time of the freeze. Default `sessionTimeout / 2`. */
  readonly disconnectedWithin?: number;
  /** `expired` must not fire before this time of the freeze. Default `sessionTimeout`. */
  readonly expiredNotBefore?: number;
  /** `expired` must fire within this time of the freeze. Default `2 * sessionTimeout`. */
  readonly expiredWithin?: number;
  /** `connect()` while the server is still frozen rejects with `ERR_BACKEND_UNAVAILABLE` within this time. Default `connectTimeout + 1000`. */
  readonly connectFailsWithin?: number;
  /** After the resume and the new session, the old session's claim is gone within this time. Default `3 * sessionTimeout`. */
  readonly staleGoneWithin?: number;
}

/** Bounds of "a restart that keeps the data", in milliseconds: the session must survive the restart. */
export interface RestartBounds {
  /** Session timeout asked of `faults.factory`. Default 8000. */
  readonly sessionTimeout?: number;
  /** Connect timeout asked of `faults.factory`. Default 5000. */
  readonly connectTimeout?: number;
  /** `disconnected` must fire within this time of the stop. Default `sessionTimeout`. */
  readonly disconnectedWithin?: number;
  /** The backend is connected again within this time of the start. Default `sessionTimeout`. */
  readonly reconnectedWithin?: number;
  /** A record written after the restart reaches the watches made before it within this time. Default 5000. */
  readonly watchWithin?: number;
}

/**
 * Bounds of "a partition longer than the session timeout", in milliseconds: the server, which keeps running,
 * expires the cut-off session; the backend reports `disconnected`, then `expired`, and after the heal opens a new one.
 */
export interface PartitionBounds {
  /** Session timeout asked of the factories. Default 3000. */
  readonly sessionTimeout?: number;
  /** Connect timeout asked of the factories. Default 5000. */
  readonly connectTimeout?: number;
  /** `disconnected` must fire within this time of the cut. Default `sessionTimeout / 2`. */
  readonly disconnectedWithin?: number;
  /** The server frees the cut-off session's claim within this time of the cut. Default `3 * sessionTimeout`. */
  readonly freedWithin?: number;
  /** The backend reports `expired` within this time of the cut. Default `3 * sessionTimeout`. */
  readonly expiredWithin?: number;
  /** A watch made before the cut delivers on the new session within this time. Default 5000. */
  readonly watchWithin?: number;
}

/** The bounds of every fault case; each one defaults to what a ZooKeeper-like backend meets. */
export interface AllocatorBackendFaultBounds {
  readonly shortFreeze?: ShortFreezeBounds;
  readonly longFreeze?: LongFreezeBounds;
  readonly restart?: RestartBounds;
  readonly partition?: PartitionBounds;
}

/**
 * Hooks that inject faults into a private server (never a shared one), so that the suite's fault cases run against
 * any backend that gives them. Each group of hooks is optional; the cases that need a missing one are skipped
 * under a title that names it.
 */
export interface AllocatorBackendFaults {
  /** A new, unconnected backend of the private server the hooks act on, with the given timeouts. */
  readonly factory: (options: FaultBackendOptions) => AllocatorBackend | Promise<AllocatorBackend>;
  /**
   * Freezes the whole server (SIGSTOP: connections stay open, nothing answers) and resumes it (SIGCONT). The
   * suite resumes after each case, so `resume` must resolve when nothing is frozen.
   */
  readonly freeze?: { readonly pause: () => Promise<void>; readonly resume: () => Promise<void> };
  /** Stops the server and starts it again on the same address and data. */
  readonly restart?: { readonly stop: () => Promise<void>; readonly start: () => Promise<void> };
  /**
   * Cuts one backend off the running server (a proxy that forwards nothing, both ways, keeping its connections
   * open) and heals the cut. Only backends from `partition.factory` can be cut. The suite heals after each case.
   */
  readonly partition?: {
    readonly factory: (options: FaultBackendOptions) => AllocatorBackend | Promise<AllocatorBackend>;
    readonly cut: (backend: AllocatorBackend) => void | Promise<void>;
    readonly heal: (backend: AllocatorBackend) => void | Promise<void>;
  };
  /**
   * The session that owns the ephemeral entry at `location` on the server (ZooKeeper's `ephemeralOwner`, etcd's
   * lease), in the form of the `connected` event's `sessionId`; null when there is no such entry. Read by a client
   * of its own. When given, the freeze cases check it.
   */
  readonly ownerOf?: (location: string) => Promise<string | null>;
  /** Whether the server still keeps session `sessionId` (e.g. the etcd lease). When given, the long freeze checks it. */
  readonly sessionExists?: (sessionId: string) => Promise<boolean>;
  readonly bounds?: AllocatorBackendFaultBounds;
}

/**
 * What makes a backend with `supports.auth` testable: backends of one server (with authentication on) that hold
 * the credentials, and backends that do not.
 */
export interface AllocatorBackendAuth {
  /** A new, unconnected backend with the credentials. */
  readonly factory: () => AllocatorBackend | Promise<AllocatorBackend>;
  /** A new, unconnected backend of the same server and namespace without credentials (or with wrong ones). */
  readonly unauthenticatedFactory: () => AllocatorBackend | Promise<AllocatorBackend>;
}

/** Options of {@link runAllocatorBackendSuite}. */
export interface AllocatorBackendSuiteOptions {
  /** Names the suite in the runner's output, e.g. `zookeeper`. */
  readonly name: string;
  /** The test runner's `describe`, `it`, `expect` and `afterEach`. */
  readonly runner: SuiteRunner;
  /**
   * Makes a new, unconnected backend: one call is one future session. Every backend the suite makes, it closes.
   * Each call must give an independent client (its own connection), as separate processes would have.
   */
  readonly factory: () => AllocatorBackend | Promise<AllocatorBackend>;
  /** Overrides the abilities the backend declares in `supports`. */
  readonly supports?: Partial<BackendSupports>;
  /**
   * Makes the server expire the session of `backend` (connected) as if the client had gone silent, without
   * closing the client: e.g. `store.expireSession()` for MemoryBackend, closing a second ZooKeeper client opened
   * with the same session id and password, or revoking the etcd lease. Without it, the session-expiry cases are
   * skipped, with a message naming this hook.
   */
  readonly expireSession?: (backend: AllocatorBackend) => Promise<void>;
  /**
   * Required when the backend declares `supports.auth`: the authentication case refuses a session without
   * credentials through it. Without it, that case is skipped under a title naming the hook, and a separate case
   * fails if the backend declares `supports.auth`.
   */
  readonly auth?: AllocatorBackendAuth;
  /** Fault injection into a private server. Without it, the fault cases are skipped under a title naming it. */
  readonly faults?: AllocatorBackendFaults;
  /**
   * Removes what a test left of `group` on the server (persistent records and parent paths), called after each
   * test for every group it used. Optional: without it, persistent records of the random test groups stay.
   */
  readonly cleanupGroup?: (group: string) => Promise<void>;
  readonly timeouts?: AllocatorBackendSuiteTimeouts;
  /** How many sessions race in the concurrency cases. Default 4, at least 2. */
  readonly concurrency?: number;
}

export const DEFAULT_TIMEOUTS: Required<AllocatorBackendSuiteTimeouts> = {
  watch: 5_000,
  expiry: 30_000,
  test: 30_000,
};
