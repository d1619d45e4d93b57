/**
 * The allocator backend conformance suite: one set of Jest cases that every {@link AllocatorBackend} runs against
 * its real server (MemoryBackend here, ZooKeeper in @kiel/allocator-zk, etcd in @kiel/allocator-etcd).
 *
 * It imports Jest's functions from `@jest/globals`, which Jest provides to every test file, so it runs inside the
 * caller's Jest and nowhere else.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import type {
  AllocatorBackend,
  AllocatorBackendEvents,
  BackendError,
  BackendSupports,
  Claim,
  Member,
  MemberInfo,
  RecordName,
  Unsubscribe,
  VersionedRecord,
} from '../backend/types';
import { isBackendError } from '../backend/errors';
import { rendezvous, sticky, type Assignment } from '@kiel/allocators';
import {
  compareStrings,
  formatAllocation,
  formatPartitionSet,
  MAX_RECORD_BYTES,
  parseAllocation,
  parsePartitionSet,
  partitionsOf,
} from '../group/records';

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
  /** Names the suite in Jest's output, e.g. `zookeeper`. */
  readonly name: string;
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

const DEFAULT_TIMEOUTS: Required<AllocatorBackendSuiteTimeouts> = { watch: 5_000, expiry: 30_000, test: 30_000 };
/** How often `eventually` polls. Short, because watches of an in-process backend deliver within milliseconds. */
const POLL_INTERVAL_MS = 10;

/**
 * Registers the conformance cases for one backend with Jest (`describe` / `it`). Call it at the top level of a
 * spec file. Each case uses its own random group, bounds its own time, and closes every backend it opens.
 *
 * What a backend must do to pass, beyond the doc comments of {@link AllocatorBackend}:
 * - `join` stores the given `info` as JSON without judging it (the consumer validates its own input), while
 *   `members` / `watchMembers` check what they read: an entry whose JSON does not parse, or whose `id` is not a
 *   non-empty string, `host` not a string, `pid` not a non-negative integer, or `weight` present but not a
 *   positive number, is left out and reported through `error` as `ERR_MALFORMED_RECORD` with its `location`.
 * - Records and claims are handed over raw: their values are the consumer's to parse.
 * - Concurrent `connect()` calls share one session.
 *
 * @example
 * ```ts
 * // test/memory-backend.spec.ts
 * import { MemoryBackend, MemoryStore } from '@kiel/consumer';
 * import { runAllocatorBackendSuite } from '@kiel/consumer/testing';
 *
 * const store = new MemoryStore();
 * runAllocatorBackendSuite({
 *   name: 'memory',
 *   factory: () => new MemoryBackend({ store }),
 *   expireSession: async (backend) => {
 *     store.expireSession((backend as MemoryBackend).sessionId!);
 *   },
 * });
 * ```
 */
export function runAllocatorBackendSuite(options: AllocatorBackendSuiteOptions): void {
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const concurrency = Math.max(2, options.concurrency ?? 4);
  const caseTimeout = timeouts.test;
  const expiryCaseTimeout = timeouts.test + 2 * timeouts.expiry;

  describe(`AllocatorBackend conformance: ${options.name}`, () => {
    let t: Harness;
    beforeEach(() => {
      t = new Harness(options, timeouts.watch);
    });
    afterEach(async () => {
      await t.dispose();
    });

    describe('lifecycle', () => {
      it(
        'starts idle, connects with a new session, and closes',
        async () => {
          const b = await t.create();
          expect(b.state).toBe('idle');
          expect(typeof b.name).toBe('string');
          expect(b.name.length).toBeGreaterThan(0);
          const connected = t.events(b, 'connected');
          await t.bounded(b.connect(), 'connect()');
          expect(b.state).toBe('connected');
          expect(b.sessionTimeout).toBeGreaterThan(0);
          await t.eventually('the connected event', () => connected.length === 1);
          expect(connected[0][0].newSession).toBe(true);
          expect(typeof connected[0][0].sessionId).toBe('string');
          expect(connected[0][0].sessionId.length).toBeGreaterThan(0);
          await t.bounded(b.close(), 'close()');
          expect(b.state).toBe('closed');
        },
        caseTimeout,
      );

      it(
        'connect is idempotent, also when called concurrently: one session',
        async () => {
          const b = await t.create();
          const connected = t.events(b, 'connected');
          await t.bounded(Promise.all([b.connect(), b.connect(), b.connect()]), 'three concurrent connect()');
          await t.bounded(b.connect(), 'connect() while connected');
          expect(b.state).toBe('connected');
          await t.eventually('the connected event', () => connected.length >= 1);
          await delay(50);
          expect(connected.length).toBe(1);

          const group = t.group();
          await b.join(group, memberInfo('only'));
          const observer = await t.open();
          expect(ids(await observer.members(group))).toEqual(['only']);
        },
        caseTimeout,
      );

      it(
        'close is idempotent and never rejects, connected or not',
        async () => {
          const never = await t.create();
          await t.bounded(never.close(), 'close() of a never connected backend');
          expect(never.state).toBe('closed');

          const b = await t.open();
          await t.bounded(Promise.all([b.close(), b.close()]), 'two concurrent close()');
          await t.bounded(b.close(), 'close() after close()');
          expect(b.state).toBe('closed');
        },
        caseTimeout,
      );

      it(
        'every call after close rejects with ERR_BACKEND_CLOSED (not retriable)',
        async () => {
          const b = await t.open();
          const group = t.group();
          await b.close();
          const calls: Array<[string, () => Promise<unknown>]> = [
            ['connect', () => b.connect()],
            ['join', () => b.join(group, memberInfo('late'))],
            ['leave', () => b.leave(group)],
            ['members', () => b.members(group)],
            ['readRecord', () => b.readRecord(group, 'allocation')],
            ['writeRecord', () => b.writeRecord(group, 'allocation', '{}', null)],
            ['claim', () => b.claim(group, 't:0', '{}')],
            ['release', () => b.release(group, 't:0')],
            ['readClaim', () => b.readClaim(group, 't:0')],
            ['claims', () => b.claims(group)],
          ];
          for (const [what, call] of calls) {
            const error = await t.rejection(call(), `${what}() after close()`);
            expect({ call: what, code: error.code, retriable: error.retriable }).toEqual({
              call: what,
              code: 'ERR_BACKEND_CLOSED',
              retriable: false,
            });
          }
        },
        caseTimeout,
      );

      it(
        'close ends the session: its member entry and claims vanish for the others',
        async () => {
          const group = t.group();
          const [a, observer] = await t.openMany(2);
          await a.join(group, memberInfo('a'));
          expect(await a.claim(group, 'orders:0', claimValue('a'))).toBe(true);
          expect(await a.claim(group, 'orders:1', claimValue('a'))).toBe(true);
          const members = t.watchMembers(observer, group);
          const claim = t.watchClaim(observer, group, 'orders:0');
          await members.until('a listed', (list) => ids(list).includes('a'));
          await claim.until('a holds orders:0', (c) => c !== null);

          await a.close();
          await members.until('a gone', (list) => list.length === 0);
          await claim.until('orders:0 released', (c) => c === null);
          expect(await observer.members(group)).toEqual([]);
          expect(await observer.readClaim(group, 'orders:1')).toBeNull();
          expect((await observer.claims(group)).size).toBe(0);
        },
        caseTimeout,
      );
    });

    describe('membership', () => {
      it(
        'join and leave are visible to another session, sorted by strictly increasing order',
        async () => {
          const group = t.group();
          const [a, b, c, observer] = await t.openMany(4);
          const joined: Member[] = [];
          for (const [backend, id] of [
            [a, 'a'],
            [b, 'b'],
            [c, 'c'],
          ] as const) {
            joined.push(await backend.join(group, memberInfo(id)));
          }
          expect(ids(joined)).toEqual(['a', 'b', 'c']);
          expect(joined[0].order).toBeLessThan(joined[1].order);
          expect(joined[1].order).toBeLessThan(joined[2].order);
          for (const m of joined) {
            expect(typeof m.location).toBe('string');
            expect(m.location.length).toBeGreaterThan(0);
          }

          const listed = await observer.members(group);
          expect(listed.map(summary)).toEqual(joined.map(summary));
          expect(listed[0].info).toEqual(memberInfo('a'));

          const watch = t.watchMembers(observer, group);
          await watch.until('a, b, c', (list) => ids(list).join() === 'a,b,c');
          await b.leave(group);
          await watch.until('a, c after b left', (list) => ids(list).join() === 'a,c');
          expect(ids(await observer.members(group))).toEqual(['a', 'c']);
          expect(ids(await a.members(group))).toEqual(['a', 'c']);
        },
        caseTimeout,
      );

      it(
        'join is idempotent for the same session and member id',
        async () => {
          const group = t.group();
          const [a, observer] = await t.openMany(2);
          const first = await a.join(group, memberInfo('a'));
          const again = await a.join(group, memberInfo('a'));
          expect(summary(again)).toEqual(summary(first));
          expect((await observer.members(group)).map(summary)).toEqual([summary(first)]);
        },
        caseTimeout,
      );

      it(
        'leave without a member entry resolves; a rejoin after leave is a new member with a higher order',
        async () => {
          const group = t.group();
          const [a, b] = await t.openMany(2);
          await t.bounded(a.leave(group), 'leave() before any join');
          const first = await a.join(group, memberInfo('a'));
          const other = await b.join(group, memberInfo('b'));
          await a.leave(group);
          await t.bounded(a.leave(group), 'a second leave()');
          expect(ids(await b.members(group))).toEqual(['b']);
          const rejoined = await a.join(group, memberInfo('a'));
          expect(rejoined.order).toBeGreaterThan(first.order);
          expect(rejoined.order).toBeGreaterThan(other.order);
          // The lowest order leads: b joined before a came back.
          expect(ids(await b.members(group))).toEqual(['b', 'a']);
        },
        caseTimeout,
      );

      it(
        'member info round-trips, with its weight where weights are supported',
        async () => {
          const group = t.group();
          const [a, observer] = await t.openMany(2);
          const supports = t.supports(a);
          const info: MemberInfo = { id: 'weighted', host: 'host-1.example', pid: 4242, weight: 3 };
          await a.join(group, info);
          const [listed] = await observer.members(group);
          expect(listed.info.id).toBe('weighted');
          expect(listed.info.host).toBe('host-1.example');
          expect(listed.info.pid).toBe(4242);
          if (supports.weights) expect(listed.info.weight).toBe(3);
          else expect([undefined, 3]).toContain(listed.info.weight);
        },
        caseTimeout,
      );

      it(
        'a named member (instanceId) lists back as named; two sessions may hold one id, each its own entry',
        async () => {
          const group = t.group();
          const [a, b, observer] = await t.openMany(3);
          const first = await a.join(group, { id: 'worker-1', host: 'h', pid: 1, named: true });
          const second = await b.join(group, { id: 'worker-1', host: 'h', pid: 2, named: true });
          await a.join(group, { id: 'worker-1', host: 'h', pid: 1, named: true });
          const listed = await observer.members(group);
          expect(listed.map((m) => [m.info.id, m.info.pid, m.info.named])).toEqual([
            ['worker-1', 1, true],
            ['worker-1', 2, true],
          ]);
          expect(listed.map((m) => m.order)).toEqual([first.order, second.order]);
          expect(second.order).toBeGreaterThan(first.order);
        },
        caseTimeout,
      );

      it(
        'groups are independent',
        async () => {
          const [g1, g2] = [t.group(), t.group()];
          const [a, b] = await t.openMany(2);
          await a.join(g1, memberInfo('a'));
          await b.join(g2, memberInfo('b'));
          expect(ids(await a.members(g2))).toEqual(['b']);
          expect(ids(await b.members(g1))).toEqual(['a']);
        },
        caseTimeout,
      );
    });

    describe('records', () => {
      it(
        'the control record is compare-and-set like the others, and independent of them',
        async () => {
          const group = t.group();
          const [a, b] = await t.openMany(2);
          expect(await a.readRecord(group, 'control')).toBeNull();
          const v1 = await a.writeRecord(group, 'control', '{"frozen":{"since":1}}', null);
          expect(v1).not.toBeNull();
          expect(await b.writeRecord(group, 'control', '{}', null)).toBeNull();
          const v2 = await b.writeRecord(group, 'control', '{}', v1);
          expect(v2).not.toBeNull();
          expect(await a.writeRecord(group, 'control', '{"frozen":{"since":2}}', v1)).toBeNull();
          expect(await a.readRecord(group, 'control')).toMatchObject({ value: '{}', version: v2 });
          expect(await a.readRecord(group, 'allocation')).toBeNull();
          const watch = t.watchRecord(b, group, 'control');
          await watch.until('the cleared control', (r) => r?.value === '{}');
          await a.writeRecord(group, 'control', '{"leaving":{"m":3}}', v2);
          await watch.until('a leave notice', (r) => r?.value === '{"leaving":{"m":3}}');
        },
        caseTimeout,
      );

      it(
        "holds the records of 1,000 members × 100,000 partitions, below the servers' default size limits",
        async () => {
          // ZooKeeper refuses a znode over 1 MB (jute.maxbuffer) and etcd a request over 1.5 MiB. The consumer's
          // format 1 (plain JSON) of this group takes megabytes; the compact format must fit, for a typical
          // allocation (sticky, after members came and went) and the least compressible one (rendezvous: owners
          // scattered at random).
          // Everything is computed before any session opens: a long computation must not stall its renewals.
          const topic = 'orders.events-by-customer';
          const partitions = Array.from({ length: 100_000 }, (_, p) => `${topic}:${p}`).sort(compareStrings);
          const host = (i: number) => `worker-${String(i).padStart(4, '0')}.eu-west-1.compute.internal`;
          const members = Array.from({ length: 1_000 }, (_, i) => `${host(i)}:${1000 + i}:${randomUUID()}`).sort(
            compareStrings,
          );
          const churned = [...members.slice(10), ...members.slice(0, 10).map((m) => `${m}-again`)].sort(compareStrings);
          // One line per member: what it owns. Compared as one string: Jest's deep equality is slow on 100,000 items.
          const owners = (live: readonly string[], assignment: Assignment) =>
            live.map((m) => `${m} ${[...partitionsOf(assignment, m)].sort(compareStrings).join(',')}`).join('\n');
          const records = (
            [
              ['sticky', churned, sticky(churned, partitions, { previous: sticky(members, partitions) })],
              ['rendezvous', members, rendezvous(members, partitions)],
            ] as const
          ).map(([strategy, live, assignment]) => {
            const record = { generation: 1, leader: live[0]!, strategy, members: live, partitions, assignment };
            return { record, text: formatAllocation(record), plainBytes: Buffer.byteLength(JSON.stringify(record)) };
          });
          const setText = formatPartitionSet(partitions);
          const plainSetBytes = Buffer.byteLength(JSON.stringify(partitions));

          // The I/O first, the heavy checks after it: a long computation between calls would stall the sessions.
          const group = t.group();
          const [writer, reader] = await t.openMany(2);
          expect(
            await t.bounded(writer.writeRecord(group, 'partitions', setText, null), 'writing the set'),
          ).not.toBeNull();
          const storedSet = (await t.bounded(reader.readRecord(group, 'partitions'), 'reading the set'))!;
          const watched = t.watchRecord(reader, group, 'allocation');
          const stored: VersionedRecord[] = [];
          let version: string | null = null;
          for (const { record, text } of records) {
            version = await t.bounded(
              writer.writeRecord(group, 'allocation', text, version),
              `writing ${record.strategy}`,
            );
            expect(version).not.toBeNull();
            await watched.until(`the ${record.strategy} record`, (r) => r?.value === text);
            stored.push((await t.bounded(reader.readRecord(group, 'allocation'), 'reading the allocation'))!);
          }

          expect(plainSetBytes).toBeGreaterThan(MAX_RECORD_BYTES);
          expect(Buffer.byteLength(setText)).toBeLessThanOrEqual(MAX_RECORD_BYTES);
          expect(storedSet.value === setText).toBe(true);
          expect(parsePartitionSet(storedSet.value, storedSet.location).join(',') === partitions.join(',')).toBe(true);
          records.forEach(({ record, text, plainBytes }, i) => {
            expect(plainBytes).toBeGreaterThan(MAX_RECORD_BYTES);
            expect(Buffer.byteLength(text)).toBeLessThanOrEqual(MAX_RECORD_BYTES);
            expect(stored[i]!.value === text).toBe(true);
            const parsed = parseAllocation(stored[i]!.value, stored[i]!.location);
            expect(parsed.members).toEqual(record.members);
            expect(parsed.partitions.join(',') === partitions.join(',')).toBe(true);
            expect(owners(parsed.members, parsed.assignment) === owners(record.members, record.assignment)).toBe(true);
          });
        },
        caseTimeout * 4,
      );

      it(
        'a missing record reads null; create-if-absent succeeds once and never overwrites',
        async () => {
          const group = t.group();
          const [a, b] = await t.openMany(2);
          expect(await a.readRecord(group, 'allocation')).toBeNull();
          expect(await a.readRecord(group, 'partitions')).toBeNull();

          const version = await a.writeRecord(group, 'allocation', '{"generation":1}', null);
          expect(typeof version).toBe('string');
          expect(await b.writeRecord(group, 'allocation', '{"generation":99}', null)).toBeNull();
          const read = await b.readRecord(group, 'allocation');
          expect(read).toMatchObject({ value: '{"generation":1}', version });
          expect(read!.location.length).toBeGreaterThan(0);
          // Records are independent of each other and of other groups.
          expect(await b.readRecord(group, 'partitions')).toBeNull();
          expect(await b.readRecord(t.group(), 'allocation')).toBeNull();
        },
        caseTimeout,
      );

      it(
        'compare-and-set: the expected version writes; a stale or absent version returns null and writes nothing',
        async () => {
          const group = t.group();
          const [a, b] = await t.openMany(2);
          const v1 = await a.writeRecord(group, 'partitions', '["t:0"]', null);
          expect(v1).not.toBeNull();
          const v2 = await b.writeRecord(group, 'partitions', '["t:0","t:1"]', v1);
          expect(v2).not.toBeNull();
          expect(v2).not.toBe(v1);

          expect(await a.writeRecord(group, 'partitions', '["stale"]', v1)).toBeNull();
          expect(await a.readRecord(group, 'partitions')).toMatchObject({ value: '["t:0","t:1"]', version: v2 });

          // A version of one record means nothing for another, missing, record.
          expect(await a.writeRecord(group, 'allocation', '{"generation":1}', v2)).toBeNull();
          expect(await a.readRecord(group, 'allocation')).toBeNull();

          const v3 = await a.writeRecord(group, 'partitions', '["t:0","t:1","t:2"]', v2);
          expect(v3).not.toBeNull();
          expect([v1, v2]).not.toContain(v3);
          expect(await b.readRecord(group, 'partitions')).toMatchObject({ value: '["t:0","t:1","t:2"]', version: v3 });
        },
        caseTimeout,
      );

      it(
        `concurrent writers (${concurrency} sessions): exactly one wins each round, and watchers see the final value`,
        async () => {
          const group = t.group();
          const writers = await t.openMany(concurrency);
          const observer = await t.open();
          const watch = t.watchRecord(observer, group, 'allocation');
          let expected: string | null = null;
          for (let round = 1; round <= 5; round++) {
            const current = await writers[0].readRecord(group, 'allocation');
            expect(current?.version ?? null).toBe(expected);
            const results = await Promise.all(
              writers.map((w, i) => w.writeRecord(group, 'allocation', `round-${round}-writer-${i}`, expected)),
            );
            const winners = results.flatMap((version, i) => (version === null ? [] : [{ version, i }]));
            expect({ round, winners: winners.length }).toEqual({ round, winners: 1 });
            const [winner] = winners;
            const read = await observer.readRecord(group, 'allocation');
            expect(read).toMatchObject({ value: `round-${round}-writer-${winner.i}`, version: winner.version });
            expected = winner.version;
          }
          const final = (await observer.readRecord(group, 'allocation'))!.value;
          await watch.until(`the final value ${final}`, (r) => r?.value === final);
        },
        caseTimeout,
      );

      it(
        'values are handed over raw, garbage included: the consumer parses them',
        async () => {
          const group = t.group();
          const [a, b] = await t.openMany(2);
          const garbage = '{"generation": 1, not json ✓ ünïcödé';
          const watch = t.watchRecord(b, group, 'allocation');
          await a.writeRecord(group, 'allocation', garbage, null);
          expect((await b.readRecord(group, 'allocation'))?.value).toBe(garbage);
          await watch.until('the garbage value', (r) => r?.value === garbage);
          expect(await a.claim(group, 'orders:0', garbage)).toBe(true);
          expect((await b.readClaim(group, 'orders:0'))?.value).toBe(garbage);
          expect(t.errorsOf(b)).toEqual([]);
        },
        caseTimeout,
      );
    });

    describe('claims', () => {
      it(
        `claims are exclusive under races (${concurrency} sessions claim at once: exactly one wins)`,
        async () => {
          const group = t.group();
          const racers = await t.openMany(concurrency);
          for (const partition of ['orders:0', 'orders:1', 'orders:2']) {
            const results = await Promise.all(racers.map((r, i) => r.claim(group, partition, claimValue(`m${i}`))));
            const winners = results.flatMap((won, i) => (won ? [i] : []));
            expect({ partition, winners: winners.length }).toEqual({ partition, winners: 1 });
            const [winner] = winners;
            for (const [i, r] of racers.entries()) {
              const claim = await r.readClaim(group, partition);
              expect(claim).toMatchObject({ value: claimValue(`m${winner}`), mine: i === winner });
              expect(claim!.location.length).toBeGreaterThan(0);
            }
          }
        },
        caseTimeout,
      );

      it(
        'claim is idempotent for the holder; release works only for the holder',
        async () => {
          const group = t.group();
          const [holder, other] = await t.openMany(2);
          expect(await holder.claim(group, 'orders:3', claimValue('holder'))).toBe(true);
          expect(await holder.claim(group, 'orders:3', claimValue('holder'))).toBe(true);
          expect(await other.claim(group, 'orders:3', claimValue('other'))).toBe(false);

          await t.bounded(other.release(group, 'orders:3'), 'release() by a non-holder');
          expect(await other.readClaim(group, 'orders:3')).toMatchObject({ value: claimValue('holder'), mine: false });

          await holder.release(group, 'orders:3');
          expect(await other.readClaim(group, 'orders:3')).toBeNull();
          await t.bounded(holder.release(group, 'orders:3'), 'release() of an unclaimed partition');
          expect(await other.claim(group, 'orders:3', claimValue('other'))).toBe(true);
          expect(await holder.readClaim(group, 'orders:3')).toMatchObject({ value: claimValue('other'), mine: false });
        },
        caseTimeout,
      );

      it(
        'watchClaim sees a claim and its release, with `mine` from the watcher’s session',
        async () => {
          const group = t.group();
          const [holder, waiter] = await t.openMany(2);
          const theirs = t.watchClaim(waiter, group, 'orders:0');
          const own = t.watchClaim(holder, group, 'orders:0');
          await theirs.until('no claim yet', (c) => c === null);
          await holder.claim(group, 'orders:0', claimValue('holder'));
          await theirs.until('the holder’s claim', (c) => c?.value === claimValue('holder') && !c.mine);
          await own.until('its own claim', (c) => c?.value === claimValue('holder') && c.mine);
          await holder.release(group, 'orders:0');
          await theirs.until('the release', (c) => c === null);
          expect(await waiter.claim(group, 'orders:0', claimValue('waiter'))).toBe(true);
          await own.until('the waiter’s claim', (c) => c?.value === claimValue('waiter') && !c.mine);
        },
        caseTimeout,
      );

      it(
        'claims() lists every claim of the group, and only of that group',
        async () => {
          const [group, elsewhere] = [t.group(), t.group()];
          const [a, b] = await t.openMany(2);
          await a.claim(group, 'orders:0', claimValue('a'));
          await a.claim(group, 'orders:1', claimValue('a'));
          await b.claim(group, 'payments:0', claimValue('b'));
          await b.claim(elsewhere, 'orders:0', claimValue('b'));
          const seen = await a.claims(group);
          expect([...seen.keys()].sort()).toEqual(['orders:0', 'orders:1', 'payments:0']);
          expect(seen.get('orders:0')).toMatchObject({ value: claimValue('a'), mine: true });
          expect(seen.get('payments:0')).toMatchObject({ value: claimValue('b'), mine: false });
          expect([...(await a.claims(elsewhere)).keys()]).toEqual(['orders:0']);
          expect((await a.claims(t.group())).size).toBe(0);
        },
        caseTimeout,
      );
    });

    describe('markers', () => {
      it(
        'a marker is written, overwritten (last write wins), read, listed per group and deleted, by any session',
        async () => {
          const [group, elsewhere] = [t.group(), t.group()];
          const [a, b] = await t.openMany(2);
          expect(await a.readMarker(group, 'orders:0')).toBeNull();
          expect((await a.markers(group)).size).toBe(0);
          await a.writeMarker(group, 'orders:0', '{"offset":1}');
          expect(await b.readMarker(group, 'orders:0')).toBe('{"offset":1}');
          await b.writeMarker(group, 'orders:0', '{"offset":2}');
          await a.writeMarker(group, 'payments:1', 'x');
          await b.writeMarker(elsewhere, 'orders:0', 'y');
          expect([...(await a.markers(group))]).toEqual([
            ['orders:0', '{"offset":2}'],
            ['payments:1', 'x'],
          ]);
          expect([...(await a.markers(elsewhere))]).toEqual([['orders:0', 'y']]);
          // Markers are not claims, and claims are not markers.
          expect((await a.claims(group)).size).toBe(0);
          await a.claim(group, 'orders:0', claimValue('a'));
          expect([...(await a.markers(group)).keys()]).toHaveLength(2);
          await b.writeMarker(group, 'orders:0', null);
          expect(await a.readMarker(group, 'orders:0')).toBeNull();
          await t.bounded(a.writeMarker(group, 'orders:0', null), 'deleting a marker that is not there');
          expect([...(await b.markers(group)).keys()]).toEqual(['payments:1']);
        },
        caseTimeout,
      );

      it(
        'a marker outlives the session that wrote it',
        async () => {
          const group = t.group();
          const [a, b] = await t.openMany(2);
          await a.writeMarker(group, 'orders:7', '{"offset":41,"losses":0}');
          await a.close();
          expect(await b.readMarker(group, 'orders:7')).toBe('{"offset":41,"losses":0}');
          expect(t.errorsOf(b)).toEqual([]);
        },
        caseTimeout,
      );
    });

    describe('watches', () => {
      it(
        'each watch delivers the current state once subscribed, asynchronously',
        async () => {
          const group = t.group();
          const [a, observer] = await t.openMany(2);
          await a.join(group, memberInfo('a'));
          await a.writeRecord(group, 'partitions', '["t:0"]', null);
          await a.claim(group, 't:0', claimValue('a'));

          const members = t.watchMembers(observer, group);
          const record = t.watchRecord(observer, group, 'partitions');
          const missing = t.watchRecord(observer, group, 'allocation');
          const claim = t.watchClaim(observer, group, 't:0');
          expect([members.calls.length, record.calls.length, missing.calls.length, claim.calls.length]).toEqual([
            0, 0, 0, 0,
          ]);
          await members.until('a', (list) => ids(list).join() === 'a');
          await record.until('the record', (r) => r?.value === '["t:0"]');
          await missing.until('null for a missing record', (r) => r === null);
          await claim.until('a’s claim', (c) => c?.value === claimValue('a'));
        },
        caseTimeout,
      );

      it(
        'unsubscribe stops deliveries and is idempotent',
        async () => {
          const group = t.group();
          const [writer, observer] = await t.openMany(2);
          const stopped = t.watchRecord(observer, group, 'allocation');
          const kept = t.watchRecord(observer, group, 'allocation');
          await stopped.until('the initial state', (r) => r === null);
          stopped.unsubscribe();
          stopped.unsubscribe();
          const callsBefore = stopped.calls.length;
          const v1 = await writer.writeRecord(group, 'allocation', 'one', null);
          await writer.writeRecord(group, 'allocation', 'two', v1);
          await kept.until('two', (r) => r?.value === 'two');
          await delay(100);
          expect(stopped.calls.length).toBe(callsBefore);
        },
        caseTimeout,
      );

      it(
        'a record watch misses no change under rapid churn (50 quick writes)',
        async () => {
          const group = t.group();
          const [writer, observer] = await t.openMany(2);
          const supports = t.supports(observer);
          const theirs = t.watchRecord(observer, group, 'allocation');
          const own = t.watchRecord(writer, group, 'allocation');
          await theirs.until('the initial state', (r) => r === null);
          let version: string | null = null;
          for (let i = 1; i <= 50; i++) {
            version = await writer.writeRecord(group, 'allocation', String(i), version);
            expect({ write: i, ok: version !== null }).toEqual({ write: i, ok: true });
          }
          await theirs.until('the last write (50)', (r) => r?.value === '50');
          await own.until('the last write (50)', (r) => r?.value === '50');
          for (const watch of [theirs, own]) {
            const seen = watch.calls.flatMap((r) => (r === null ? [] : [Number(r.value)]));
            // Deliveries never go back in time.
            expect(seen).toEqual([...seen].sort((x, y) => x - y));
            if (supports.orderedWatchHistory) {
              // Every state from the first one delivered onwards, none skipped.
              const distinct = [...new Set(seen)];
              const from = distinct[0];
              expect(distinct).toEqual(Array.from({ length: 51 - from }, (_, k) => from + k));
            }
          }
          await delay(100);
          expect(theirs.last?.value).toBe('50');
        },
        caseTimeout,
      );

      it(
        'a members watch ends on the right list under rapid join and leave churn',
        async () => {
          const group = t.group();
          const observer = await t.open();
          const watch = t.watchMembers(observer, group);
          await watch.until('an empty group', (list) => list.length === 0);
          const sessions = await t.openMany(2 * concurrency);
          const joined = await Promise.all(sessions.map((s, i) => s.join(group, memberInfo(`m${i}`))));
          // Half of them go at once, some by leave(), some by closing their session.
          await Promise.all(
            sessions.map((s, i) => (i % 2 === 0 ? Promise.resolve() : i % 4 === 1 ? s.leave(group) : s.close())),
          );
          const expected = joined
            .filter((_, i) => i % 2 === 0)
            .sort((x, y) => x.order - y.order)
            .map(summary);
          await watch.until(`${expected.length} remaining members`, (list) => sameMembers(list, expected));
          expect((await observer.members(group)).map(summary)).toEqual(expected);
          await delay(100);
          expect(watch.last!.map(summary)).toEqual(expected);
        },
        caseTimeout,
      );

      it(
        'a claim watch ends on the right state under rapid claim and release churn',
        async () => {
          const group = t.group();
          const [a, b, observer] = await t.openMany(3);
          const watch = t.watchClaim(observer, group, 'orders:7');
          await watch.until('no claim', (c) => c === null);
          for (let i = 0; i < 20; i++) {
            const holder = i % 2 === 0 ? a : b;
            expect(await holder.claim(group, 'orders:7', claimValue(`round-${i}`))).toBe(true);
            await holder.release(group, 'orders:7');
          }
          await watch.until('released after the churn', (c) => c === null && watch.calls.length > 1);
          expect(await b.claim(group, 'orders:7', claimValue('final'))).toBe(true);
          await watch.until('the final claim', (c) => c?.value === claimValue('final'));
        },
        caseTimeout,
      );

      it(
        'a listener that throws is reported through `error`, and the backend keeps delivering',
        async () => {
          const group = t.group();
          const [writer, observer] = await t.openMany(2);
          const errors = t.errorsOf(observer);
          const unsubscribe = observer.watchRecord(group, 'allocation', () => {
            throw new Error('listener failure injected by the conformance suite');
          });
          t.onDispose(unsubscribe);
          const healthy = t.watchRecord(observer, group, 'allocation');
          const v1 = await writer.writeRecord(group, 'allocation', 'one', null);
          await healthy.until('one', (r) => r?.value === 'one');
          await t.eventually('an error event', () => errors.length > 0);
          expect(typeof errors[0].code).toBe('string');
          await writer.writeRecord(group, 'allocation', 'two', v1);
          await healthy.until('two', (r) => r?.value === 'two');
          expect(await observer.readRecord(group, 'allocation')).toMatchObject({ value: 'two' });
        },
        caseTimeout,
      );
    });

    describe('malformed data', () => {
      it(
        'a malformed member entry is left out of members() and watchMembers, and reported as ERR_MALFORMED_RECORD',
        async () => {
          const group = t.group();
          const [good, bad, observer] = await t.openMany(3);
          await good.join(group, memberInfo('good'));
          // Another writer (an old or broken version) stored an entry of the wrong shape.
          const garbage = { id: 'bad', host: 42, pid: 'not a pid' } as unknown as MemberInfo;
          await bad.join(group, garbage);
          const errors = t.errorsOf(observer);

          expect(ids(await observer.members(group))).toEqual(['good']);
          await t.eventually('an ERR_MALFORMED_RECORD error event', () =>
            errors.some((e) => e.code === 'ERR_MALFORMED_RECORD'),
          );
          const reported = errors.find((e) => e.code === 'ERR_MALFORMED_RECORD')!;
          expect(typeof reported.location).toBe('string');
          expect(reported.location!.length).toBeGreaterThan(0);

          const watch = t.watchMembers(observer, group);
          await watch.until('only the good member', (list) => ids(list).join() === 'good');
          await good.leave(group);
          await watch.until('no good member left', (list) => list.length === 0);
          expect(observer.state).toBe('connected');
        },
        caseTimeout,
      );

      it(
        'an empty group name or partition id, one with a control character, and a value that is not a string are refused with ERR_INVALID_CONFIG before any write',
        async () => {
          const group = t.group();
          const [b, observer] = await t.openMany(2);
          const refused = async (what: string, call: () => Promise<unknown>) => {
            const error = await call().then(
              () => undefined,
              (e: unknown) => e,
            );
            expect({ what, code: isBackendError(error) ? error.code : String(error) }).toEqual({
              what,
              code: 'ERR_INVALID_CONFIG',
            });
          };
          await refused('join, empty group', () => b.join('', memberInfo('x')));
          await refused('join, group with a newline', () => b.join(`${group}\n`, memberInfo('x')));
          await refused('readRecord, empty group', () => b.readRecord('', 'allocation'));
          await refused('claim, empty partition', () => b.claim(group, '', 'v'));
          await refused('claim, partition with a NUL', () => b.claim(group, 'orders:\u00001', 'v'));
          await refused('claim, value not a string', () => b.claim(group, 'orders:1', 42 as unknown as string));
          await refused('writeRecord, value not a string', () =>
            b.writeRecord(group, 'allocation', null as unknown as string, null),
          );
          await refused('writeMarker, value not a string', () =>
            b.writeMarker(group, 'orders:1', {} as unknown as string),
          );
          // Nothing was written, and the backend still works.
          expect(await observer.claims(group)).toEqual(new Map());
          expect(await observer.readRecord(group, 'allocation')).toBeNull();
          expect(await b.claim(group, 'orders:1', 'v')).toBe(true);
          expect(b.state).toBe('connected');
        },
        caseTimeout,
      );
    });

    describe('liveness', () => {
      it(
        'lastContact advances while connected',
        async () => {
          const b = await t.open();
          const first = b.lastContact;
          expect(first).toBeGreaterThan(0);
          expect(first).toBeLessThanOrEqual(performance.now());
          const within = b.sessionTimeout / 2 + timeouts.watch;
          await t.eventually(`lastContact to advance within ${within} ms`, () => b.lastContact > first, within);
          expect(performance.now() - b.lastContact).toBeLessThan(b.sessionTimeout / 4 + timeouts.watch);
        },
        caseTimeout,
      );
    });

    const expireSession = options.expireSession;
    // The one conditional skip the suite has: without the hook, a backend cannot be made to expire on demand.
    // Jest lists the skipped cases under this name, so a missing hook is visible in every run.
    const describeExpiry = expireSession ? describe : describe.skip;
    const expiryTitle = expireSession
      ? 'session expiry'
      : 'session expiry — SKIPPED: no `expireSession` hook was given to runAllocatorBackendSuite';
    describeExpiry(expiryTitle, () => {
      it(
        'an expired session fires `expired`, its ephemerals vanish for the others, and its calls reject',
        async () => {
          const group = t.group();
          const observer = await t.open();
          const victim = await t.create();
          const expired = t.events(victim, 'expired');
          const connected = t.events(victim, 'connected');
          await t.bounded(victim.connect(), 'connect()');
          await t.eventually('the connected event', () => connected.length === 1);
          await victim.join(group, memberInfo('victim'));
          await observer.join(group, memberInfo('observer'));
          expect(await victim.claim(group, 'orders:0', claimValue('victim'))).toBe(true);
          const members = t.watchMembers(observer, group);
          const claim = t.watchClaim(observer, group, 'orders:0');
          await members.until('both members', (list) => list.length === 2);
          await claim.until('the victim’s claim', (c) => c !== null);

          await t.bounded(expireSession!(victim), 'the expireSession hook', timeouts.expiry);
          await t.eventually('the expired event', () => expired.length === 1, timeouts.expiry);
          expect(expired[0][0].sessionId).toBe(connected[0][0].sessionId);
          expect(victim.state).toBe('expired');
          await members.until('only the observer', (list) => ids(list).join() === 'observer', timeouts.expiry);
          await claim.until('no claim', (c) => c === null, timeouts.expiry);
          expect(ids(await observer.members(group))).toEqual(['observer']);

          const joinError = await t.rejection(victim.join(group, memberInfo('victim')), 'join() after expiry');
          expect(joinError.code).toBe('ERR_SESSION_EXPIRED');
          const claimError = await t.rejection(
            victim.claim(group, 'orders:0', claimValue('victim')),
            'claim() after expiry',
          );
          expect(claimError.code).toBe('ERR_SESSION_EXPIRED');
        },
        expiryCaseTimeout,
      );

      it(
        'a listener of `expired` that throws is reported through `error`, and the listeners after it still hear it',
        async () => {
          const victim = await t.create();
          victim.on('expired', () => {
            throw new Error('listener boom');
          });
          const expired = t.events(victim, 'expired');
          const errors = t.events(victim, 'error');
          await t.bounded(victim.connect(), 'connect()');
          await victim.join(t.group(), memberInfo('victim'));
          await t.bounded(expireSession!(victim), 'the expireSession hook', timeouts.expiry);
          await t.eventually('the expired event at the second listener', () => expired.length === 1, timeouts.expiry);
          await t.eventually('the throwing listener reported', () =>
            errors.some(([e]) => /listener boom/.test(e.message)),
          );
        },
        expiryCaseTimeout,
      );

      it(
        'after expiry, connect() opens a new session: join works as a new member with a higher order, watches resume',
        async () => {
          const group = t.group();
          const observer = await t.open();
          const victim = await t.create();
          const expired = t.events(victim, 'expired');
          const connected = t.events(victim, 'connected');
          await t.bounded(victim.connect(), 'connect()');
          const before = await victim.join(group, memberInfo('victim'));
          await observer.join(group, memberInfo('observer'));
          const own = t.watchMembers(victim, group);
          const theirs = t.watchMembers(observer, group);
          await own.until('both members', (list) => list.length === 2);

          await t.bounded(expireSession!(victim), 'the expireSession hook', timeouts.expiry);
          await t.eventually('the expired event', () => expired.length === 1, timeouts.expiry);
          // A change the expired session cannot see: its watch must catch up once the new session is open.
          const late = await (await t.open()).join(group, memberInfo('late'));
          await theirs.until('the late member', (list) => ids(list).includes('late'));
          await t.bounded(victim.connect(), 'connect() after expiry', timeouts.expiry);
          expect(victim.state).toBe('connected');
          await t.eventually('a second connected event', () => connected.length === 2);
          expect(connected[1][0].newSession).toBe(true);
          expect(connected[1][0].sessionId).not.toBe(connected[0][0].sessionId);
          // The subscription made before the expiry delivers the current state again on the new session.
          await own.until('the members after the expiry', (list) => ids(list).join() === 'observer,late');

          const after = await victim.join(group, memberInfo('victim'));
          expect(after.order).toBeGreaterThan(before.order);
          expect(after.order).toBeGreaterThan(late.order);
          expect(ids(await observer.members(group))).toEqual(['observer', 'late', 'victim']);
          await own.until('the new entry', (list) =>
            list.some((m) => m.info.id === 'victim' && m.order === after.order),
          );
          expect(await victim.claim(group, 'orders:0', claimValue('victim'))).toBe(true);
          expect(await observer.readClaim(group, 'orders:0')).toMatchObject({ mine: false });
        },
        expiryCaseTimeout,
      );
    });
  });
}

type EventArgs<E extends keyof AllocatorBackendEvents> = AllocatorBackendEvents[E];

/** The watch of one listener: every call it received, and a bounded wait for a state. */
interface Watched<T> {
  readonly calls: T[];
  readonly last: T | undefined;
  until(what: string, predicate: (state: T) => boolean, timeoutMs?: number): Promise<void>;
  unsubscribe: Unsubscribe;
}

/** Per-test bookkeeping: the backends, groups and subscriptions a test made, all undone in `dispose`. */
class Harness {
  private readonly backends: AllocatorBackend[] = [];
  private readonly groups: string[] = [];
  private readonly disposers: Array<() => void> = [];
  private readonly errors = new Map<AllocatorBackend, BackendError[]>();

  constructor(
    private readonly options: AllocatorBackendSuiteOptions,
    private readonly watchTimeout: number,
  ) {}

  /** A random group name, cleaned up after the test. */
  group(): string {
    const group = `kiel-conformance-${randomUUID()}`;
    this.groups.push(group);
    return group;
  }

  /** A new backend from the factory, not connected. Its `error` events are collected (see `errorsOf`). */
  async create(): Promise<AllocatorBackend> {
    const backend = await this.options.factory();
    this.backends.push(backend);
    const errors: BackendError[] = [];
    this.errors.set(backend, errors);
    backend.on('error', (error) => errors.push(error));
    return backend;
  }

  /** A new, connected backend. */
  async open(): Promise<AllocatorBackend> {
    const backend = await this.create();
    await this.bounded(backend.connect(), 'connect()');
    return backend;
  }

  async openMany(count: number): Promise<AllocatorBackend[]> {
    return Promise.all(Array.from({ length: count }, () => this.open()));
  }

  /** Every `error` event the backend emitted so far (a live array). */
  errorsOf(backend: AllocatorBackend): BackendError[] {
    return this.errors.get(backend)!;
  }

  supports(backend: AllocatorBackend): BackendSupports {
    return { ...backend.supports, ...this.options.supports };
  }

  /** Records the arguments of every `event` from now on (a live array). */
  events<E extends keyof AllocatorBackendEvents>(backend: AllocatorBackend, event: E): Array<EventArgs<E>> {
    const seen: Array<EventArgs<E>> = [];
    const listener = (...args: EventArgs<E>) => {
      seen.push(args);
    };
    backend.on(event, listener);
    this.onDispose(() => backend.off(event, listener));
    return seen;
  }

  watchMembers(backend: AllocatorBackend, group: string): Watched<readonly Member[]> {
    return this.watch((listener) => backend.watchMembers(group, listener));
  }

  watchRecord(backend: AllocatorBackend, group: string, name: RecordName): Watched<VersionedRecord | null> {
    return this.watch((listener) => backend.watchRecord(group, name, listener));
  }

  watchClaim(backend: AllocatorBackend, group: string, partition: string): Watched<Claim | null> {
    return this.watch((listener) => backend.watchClaim(group, partition, listener));
  }

  onDispose(dispose: () => void): void {
    this.disposers.push(dispose);
  }

  /** Polls `probe` until it holds; fails with `what` and the time waited when it does not in time. */
  async eventually(what: string, probe: () => boolean, timeoutMs = this.watchTimeout): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!probe()) {
      if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
      await delay(POLL_INTERVAL_MS);
    }
  }

  /** Awaits `promise`, failing the test with `what` if it takes longer than `timeoutMs` (no call may hang). */
  async bounded<T>(promise: Promise<T>, what: string, timeoutMs = this.watchTimeout): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The error `promise` rejects with; fails the test if it resolves. */
  async rejection(promise: Promise<unknown>, what: string): Promise<BackendError> {
    const outcome = await this.bounded(
      promise.then(
        (value) => ({ resolved: true as const, value }),
        (error: unknown) => ({ resolved: false as const, error }),
      ),
      what,
    );
    if (outcome.resolved) throw new Error(`${what} resolved (with ${JSON.stringify(outcome.value)}) but must reject`);
    const error = outcome.error as BackendError;
    expect(error).toBeInstanceOf(Error);
    expect(typeof error.code).toBe('string');
    expect(typeof error.retriable).toBe('boolean');
    return error;
  }

  async dispose(): Promise<void> {
    for (const dispose of this.disposers.splice(0)) {
      try {
        dispose();
      } catch {
        // A failing unsubscribe must not keep the backends below open.
      }
    }
    const closing = this.backends.splice(0).map((b) => b.close().catch(() => undefined));
    await Promise.all(closing);
    const cleanup = this.options.cleanupGroup;
    if (cleanup) await Promise.all(this.groups.map((g) => cleanup(g).catch(() => undefined)));
    this.groups.length = 0;
  }

  private watch<T>(subscribe: (listener: (state: T) => void) => Unsubscribe): Watched<T> {
    const calls: T[] = [];
    const unsubscribe = subscribe((state) => {
      calls.push(state);
    });
    this.onDispose(unsubscribe);
    const watchTimeout = this.watchTimeout;
    return {
      calls,
      get last() {
        return calls[calls.length - 1];
      },
      unsubscribe,
      until: async (what, predicate, timeoutMs = watchTimeout) => {
        const holds = () => calls.length > 0 && predicate(calls[calls.length - 1]);
        try {
          await this.eventually(what, holds, timeoutMs);
        } catch (error) {
          const last = calls.length > 0 ? JSON.stringify(calls[calls.length - 1]) : 'no call at all';
          throw new Error(`${(error as Error).message}; the listener's last state: ${last}`);
        }
      },
    };
  }
}

function memberInfo(id: string): MemberInfo {
  return { id, host: 'conformance.test', pid: 1000 };
}

function claimValue(member: string): string {
  return JSON.stringify({ member, generation: 1 });
}

function ids(members: readonly Member[]): string[] {
  return members.map((m) => m.info.id);
}

function summary(member: Member): { id: string; order: number; location: string } {
  return { id: member.info.id, order: member.order, location: member.location };
}

function sameMembers(list: readonly Member[], expected: ReturnType<typeof summary>[]): boolean {
  return JSON.stringify(list.map(summary)) === JSON.stringify(expected);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
