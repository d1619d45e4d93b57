/**
 * The allocator backend conformance suite: one set of cases that every `AllocatorBackend` runs against its
 * real server (MemoryBackend here, ZooKeeper in @kiel/allocator-zk, etcd in @kiel/allocator-etcd). A harness
 * (`harness.ts`) and one file per feature; this file composes them.
 *
 * The test runner's functions are passed in (`options.runner`), so this package depends on no test runner.
 */
import { capabilityCases } from './auth';
import { claimCases } from './claims';
import { expiryCases } from './expiry';
import { faultCases } from './faults';
import { suiteContext } from './harness';
import { lifecycleCases } from './lifecycle';
import { livenessCases } from './liveness';
import { malformedDataCases } from './malformed';
import { markerCases } from './markers';
import { membershipCases } from './membership';
import type { AllocatorBackendSuiteOptions } from './options';
import { recordCases } from './records';
import { watchCases } from './watches';

export type {
  AllocatorBackendAuth,
  AllocatorBackendFaultBounds,
  AllocatorBackendFaults,
  AllocatorBackendSuiteOptions,
  AllocatorBackendSuiteTimeouts,
  FaultBackendOptions,
  LongFreezeBounds,
  PartitionBounds,
  RestartBounds,
  ShortFreezeBounds,
  SuiteDescribe,
  SuiteMatcherMethods,
  SuiteMatchers,
  SuiteRunner,
} from './options';

/**
 * Registers the conformance cases for one backend with the given runner (`describe` / `it`). Call it at the top
 * level of a spec file. Each case uses its own random group, bounds its own time, and closes every backend it
 * opens. Cases that need a hook the caller did not give (`expireSession`, `auth`, `faults`) are skipped under a
 * title naming the hook.
 *
 * What a backend must do to pass, beyond the doc comments of `AllocatorBackend`:
 * - `join` stores the given `info` as JSON without judging it (the consumer validates its own input), while
 *   `members` / `watchMembers` check what they read: an entry whose JSON does not parse, or whose `id` is not a
 *   non-empty string, `host` not a string, `pid` not a non-negative integer, or `weight` present but not a
 *   positive number, is left out and reported through `error` as `ERR_MALFORMED_RECORD` with its `location`.
 * - Records and claims are handed over raw: their values are the consumer's to parse.
 * - Concurrent `connect()` calls share one session.
 * - With `supports.auth`, an `auth` hook, through which a session without credentials is refused.
 *
 * @example
 * ```ts
 * // test/memory-backend.spec.ts
 * import { afterEach, describe, expect, it } from '@jest/globals';
 * import { MemoryBackend, MemoryStore } from '@kiel/consumer';
 * import { runAllocatorBackendSuite } from '@kiel/consumer/testing';
 *
 * const store = new MemoryStore();
 * runAllocatorBackendSuite({
 *   name: 'memory',
 *   runner: { describe, it, expect, afterEach },
 *   factory: () => new MemoryBackend({ store, sessionTimeout: 2_000 }),
 *   expireSession: async (backend) => {
 *     store.expireSession((backend as MemoryBackend).sessionId!);
 *   },
 * });
 * ```
 */
export function runAllocatorBackendSuite(options: AllocatorBackendSuiteOptions): void {
  const context = suiteContext(options);
  const { describe, afterEach } = options.runner;

  describe(`AllocatorBackend conformance: ${options.name}`, () => {
    afterEach(async () => {
      await context.t.dispose();
    });

    lifecycleCases(context);
    membershipCases(context);
    recordCases(context);
    claimCases(context);
    markerCases(context);
    watchCases(context);
    malformedDataCases(context);
    livenessCases(context);
    expiryCases(context);
    capabilityCases(context);
    faultCases(context);
  });
}
