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
