// The fault cases: a server frozen for less and for more than the session timeout, a server restarted with its
// data, and a backend cut off from a server that keeps running. They act on a private server through the hooks of
// `options.faults`; each group of cases is skipped, under a title naming the hook, when its hook is missing.
import { performance } from 'node:perf_hooks';
import type { AllocatorBackend } from '../backend/types';
import type {
  AllocatorBackendFaults,
  FaultBackendOptions,
  LongFreezeBounds,
  PartitionBounds,
  RestartBounds,
  ShortFreezeBounds,
} from './options';
import { claimValue, describeUnless, ids, memberInfo, type SessionEvent, type SuiteContext } from './harness';

/** Registers the fault cases (skipped, visibly, without `options.faults` or the hook a case needs). */
export function faultCases({ runner: { describe, it, expect }, t, options, timeouts }: SuiteContext): void {
  const faults = options.faults;
  const bounds = resolveBounds(faults);
  // Each case waits for several server-side timeouts in a row: twice the ordinary bound.
  const faultCaseTimeout = 2 * timeouts.test;
  const open = async (
    factory: (o: FaultBackendOptions) => AllocatorBackend | Promise<AllocatorBackend>,
    o: FaultBackendOptions,
  ) => {
    const backend = await t.create(() => factory(o));
    const log = t.sessionEvents(backend);
    await t.bounded(backend.connect(), 'connect()', o.connectTimeout + timeouts.watch);
    await t.eventually('the connected event', () => log.length > 0);
    return { backend, log, session: sessionOf(log[0]) };
  };
  const since = (log: SessionEvent[], from: number) => log.slice(from).map((e) => e.event);

  const missing = (hook: string) =>
    faults ? (hook in faults ? undefined : `no \`faults.${hook}\` hook was given`) : 'no `faults` hooks were given';

  describeUnless(describe, missing('freeze'), 'faults: a frozen server', () => {
    it(
      'a freeze shorter than the session timeout: `disconnected` from the backend’s own clock, then the same session back, nothing lost',
      async () => {
        const b = bounds.shortFreeze;
        const { freeze, ownerOf } = faults!;
        const group = t.group({ cleanup: false });
        const o = { sessionTimeout: b.sessionTimeout, connectTimeout: b.connectTimeout };
        const { backend: a, log, session } = await open(faults!.factory, o);
        const { backend: observer } = await open(faults!.factory, o);
        const member = await a.join(group, memberInfo('a'));
        await observer.join(group, memberInfo('observer'));
        expect(await a.claim(group, 't:0', claimValue('a'))).toBe(true);
        const seen = t.watchMembers(observer, group);
        await seen.until('both members', (list) => list.length === 2);
        const before = log.length;

        const frozenAt = performance.now();
        await freeze!.pause();
        let reconnecting: Promise<void> | undefined;
        try {
          // No call hangs while the server is frozen.
          const call = settle(a.readRecord(group, 'allocation'));
          // The client library may see nothing wrong with a frozen server: the report must come from the
          // backend's own round-trips.
          await t.eventually('`disconnected`', () => log.length > before, b.sessionTimeout);
          const disconnected = log[before];
          expect(disconnected.event).toBe('disconnected');
          expect(disconnected.at - frozenAt).toBeLessThan(b.disconnectedWithin);
          const reason = (disconnected.info as { reason: string }).reason;
          if (b.disconnectedReason) expect(reason).toMatch(b.disconnectedReason);
          else expect(reason.length).toBeGreaterThan(0);
          expect(a.state).toBe('disconnected');
          if (b.silenceBeforeDisconnected !== undefined) {
            expect(disconnected.at - a.lastContact).toBeGreaterThan(b.silenceBeforeDisconnected);
          }
          const outcome = await t.bounded(call, 'readRecord() during the freeze', b.callFailsWithin + timeouts.watch);
          expect(outcome.resolved).toBe(false);
          const error = outcome.error as { code?: unknown; retriable?: unknown };
          expect({ code: error.code, retriable: error.retriable }).toEqual({
            code: 'ERR_BACKEND_TIMEOUT',
            retriable: true,
          });
          expect(outcome.ms).toBeLessThan(b.callFailsWithin);
          // connect() while disconnected waits for the session's fate: here, the same session is back.
          reconnecting = a.connect();
          reconnecting.catch(() => undefined);
        } finally {
          await freeze!.resume();
        }
        await t.bounded(reconnecting!, 'connect() after the resume', b.reconnectedWithin);
        expect(a.state).toBe('connected');
        expect(since(log, before)).toEqual(['disconnected', 'connected']);
        expect(log.at(-1)!.info).toEqual({ sessionId: session, newSession: false });
        expect(t.errorsOf(a)).toEqual([]);
        expect(performance.now() - a.lastContact).toBeLessThan(b.contactWithin);
        // The session survived: its entry and claim are still there, and the group never saw a member go.
        expect(ids(await a.members(group))).toEqual(['a', 'observer']);
        expect(await a.readClaim(group, 't:0')).toMatchObject({ mine: true });
        expect(await observer.readClaim(group, 't:0')).toMatchObject({ value: claimValue('a'), mine: false });
        if (ownerOf) expect(await ownerOf(member.location)).toBe(session);
        expect(seen.calls.every((list) => list.length === 2)).toBe(true);
      },
      faultCaseTimeout,
    );

    it(
      'a freeze longer than the session timeout: `disconnected` well before expiry, `expired` by the backend’s own clock, a new session after the resume',
      async () => {
        const b = bounds.longFreeze;
        const { freeze, ownerOf, sessionExists } = faults!;
        const group = t.group({ cleanup: false });
        const o = { sessionTimeout: b.sessionTimeout, connectTimeout: b.connectTimeout };
        const { backend: a, log, session: oldSession } = await open(faults!.factory, o);
        const { backend: other } = await open(faults!.factory, o);
        const before = await a.join(group, memberInfo('a'));
        expect(await a.claim(group, 't:0', claimValue('a'))).toBe(true);
        const start = log.length;

        const frozenAt = performance.now();
        await freeze!.pause();
        try {
          await t.eventually('`disconnected`', () => log.length > start, b.sessionTimeout);
          // The consumer fences itself at 2/3 of the session timeout by default; the report must come before.
          expect(log[start].event).toBe('disconnected');
          expect(log[start].at - frozenAt).toBeLessThan(b.disconnectedWithin);
          // Nothing can tell the client while the server is frozen: after a whole session timeout of silence the
          // backend counts the session lost on its own clock.
          await t.eventually('`expired`', () => log.length > start + 1, b.expiredWithin);
          const expiredAfter = log[start + 1].at - frozenAt;
          expect(expiredAfter).toBeGreaterThanOrEqual(b.expiredNotBefore);
          expect(expiredAfter).toBeLessThan(b.expiredWithin);
          expect(since(log, start)).toEqual(['disconnected', 'expired']);
          expect(log[start + 1].info).toEqual({ sessionId: oldSession });
          expect(t.errorsOf(a)).toEqual([]);
          expect(a.state).toBe('expired');
          const refused = await t.rejection(a.claim(group, 't:1', claimValue('a')), 'claim() after expiry');
          expect(refused.code).toBe('ERR_SESSION_EXPIRED');
          // While the server stays frozen, connect() gives up within the connect timeout: a typed error, no hang.
          const connectAt = performance.now();
          const unavailable = await t.rejection(
            a.connect(),
            'connect() to a frozen server',
            b.connectFailsWithin + timeouts.watch,
          );
          expect(unavailable.code).toBe('ERR_BACKEND_UNAVAILABLE');
          expect(performance.now() - connectAt).toBeLessThan(b.connectFailsWithin);
        } finally {
          await freeze!.resume();
        }

        const resumed = log.length;
        await t.bounded(a.connect(), 'connect() after the resume', b.connectTimeout + timeouts.watch);
        await t.eventually('the connected event', () => log.length > resumed);
        expect(since(log, resumed)).toEqual(['connected']);
        const renewed = log[resumed].info as { sessionId: string; newSession: boolean };
        expect(renewed.newSession).toBe(true);
        expect(renewed.sessionId).not.toBe(oldSession);
        // Nobody speaks for the old session any more: the server ends it, and its ephemerals go with it.
        if (sessionExists) {
          await t.eventuallyAsync(
            'the old session gone on the server',
            async () => !(await sessionExists(oldSession)),
            b.staleGoneWithin,
          );
        }
        await t.eventuallyAsync(
          'the old claim to vanish',
          async () => (await a.readClaim(group, 't:0')) === null,
          b.staleGoneWithin,
        );
        if (ownerOf) expect(await ownerOf(before.location)).toBeNull();
        expect(await a.members(group)).toEqual([]);
        // Never two owners: the claim is free for another session, and the new one is a new member.
        await t.bounded(other.connect(), 'connect() of the other session', b.connectTimeout + timeouts.watch);
        expect(await other.claim(group, 't:0', claimValue('other'))).toBe(true);
        expect(await a.claim(group, 't:0', claimValue('a'))).toBe(false);
        const after = await a.join(group, memberInfo('a'));
        expect(after.order).toBeGreaterThan(before.order);
        if (ownerOf) expect(await ownerOf(after.location)).toBe(renewed.sessionId);
      },
      faultCaseTimeout,
    );
  });

  describeUnless(describe, missing('restart'), 'faults: a restarted server', () => {
    it(
      'a restart that keeps the data: the session survives and watches are re-armed',
      async () => {
        const b = bounds.restart;
        const { restart } = faults!;
        const group = t.group({ cleanup: false });
        const o = { sessionTimeout: b.sessionTimeout, connectTimeout: b.connectTimeout };
        const { backend: a, log, session } = await open(faults!.factory, o);
        const { backend: writer } = await open(faults!.factory, o);
        await a.join(group, memberInfo('a'));
        let version = await writer.writeRecord(group, 'allocation', 'before', null);
        const own = t.watchRecord(a, group, 'allocation');
        const theirs = t.watchRecord(writer, group, 'allocation');
        await own.until('the record', (r) => r?.value === 'before');
        await theirs.until('the record', (r) => r?.value === 'before');
        const start = log.length;

        await restart!.stop();
        try {
          await t.eventually('`disconnected`', () => log.length > start, b.disconnectedWithin);
        } finally {
          await restart!.start();
        }
        await t.eventually('connected again', () => log.length > start + 1, b.reconnectedWithin);
        expect(since(log, start)).toEqual(['disconnected', 'connected']);
        expect(log[start + 1].info).toEqual({ sessionId: session, newSession: false });
        expect(t.errorsOf(a)).toEqual([]);
        expect(a.state).toBe('connected');
        await t.eventually('the writer back', () => writer.state === 'connected', b.reconnectedWithin);
        expect(ids(await writer.members(group))).toEqual(['a']);

        // A change after the restart reaches the watches of both sessions, after what they saw before it.
        version = await writer.writeRecord(group, 'allocation', 'after', version);
        expect(version).not.toBeNull();
        await own.until('the change after the restart', (r) => r?.value === 'after', b.watchWithin);
        expect(await a.writeRecord(group, 'allocation', 'after, from the member', version)).not.toBeNull();
        await theirs.until(
          'the member’s change after the restart',
          (r) => r?.value === 'after, from the member',
          b.watchWithin,
        );
        const values = theirs.calls.map((r) => r?.value);
        expect(values).toContain('before');
        expect(values).toContain('after, from the member');
        expect(values.indexOf('after, from the member')).toBeGreaterThan(values.lastIndexOf('before'));
      },
      faultCaseTimeout,
    );
  });

  describeUnless(describe, missing('partition'), 'faults: a backend cut off from its server', () => {
    it(
      'a partition longer than the session timeout: `disconnected` well before expiry, then `expired`, then a new session',
      async () => {
        const b = bounds.partition;
        const { partition } = faults!;
        const group = t.group({ cleanup: false });
        const o = { sessionTimeout: b.sessionTimeout, connectTimeout: b.connectTimeout };
        const { backend: member, log, session: oldSession } = await open(partition!.factory, o);
        const { backend: observer } = await open(faults!.factory, o);
        await member.join(group, memberInfo('m'));
        expect(await member.claim(group, 't:0', claimValue('m'))).toBe(true);
        const seen = t.watchMembers(member, group);
        await seen.until('the first members state', () => true);
        const start = log.length;

        const cutAt = performance.now();
        await partition!.cut(member);
        try {
          await t.eventually('`disconnected`', () => log.length > start, b.sessionTimeout);
          // The consumer fences itself at 2/3 of the session timeout by default; the report must come before.
          expect(log[start].event).toBe('disconnected');
          expect(log[start].at - cutAt).toBeLessThan(b.disconnectedWithin);
          // The server, which still runs, expires the session: the claim is free for someone else.
          await t.eventuallyAsync(
            'the server to free the claim of the expired session',
            async () => (await observer.readClaim(group, 't:0')) === null,
            b.freedWithin,
          );
          expect(await observer.claim(group, 't:0', claimValue('observer'))).toBe(true);
          // The client cannot know while cut off; the backend's own clock counts the session lost after a whole
          // session timeout of silence.
          await t.eventually('`expired`', () => log.length > start + 1, b.expiredWithin);
          expect(since(log, start)).toEqual(['disconnected', 'expired']);
          expect(log[start + 1].info).toEqual({ sessionId: oldSession });
        } finally {
          await partition!.heal(member);
        }
        const refused = await t.rejection(member.claim(group, 't:0', claimValue('m')), 'claim() after expiry');
        expect(refused.code).toBe('ERR_SESSION_EXPIRED');

        const healed = log.length;
        await t.bounded(member.connect(), 'connect() after the heal', b.connectTimeout + timeouts.watch);
        await t.eventually('the connected event', () => log.length > healed);
        expect(log[healed].info).toMatchObject({ newSession: true });
        expect((log[healed].info as { sessionId: string }).sessionId).not.toBe(oldSession);
        expect(await member.claim(group, 't:0', claimValue('m'))).toBe(false);
        await member.join(group, memberInfo('m'));
        await seen.until('the watch on the new session', (list) => ids(list).join() === 'm', b.watchWithin);
      },
      faultCaseTimeout,
    );
  });
}

/** The session id a `connected` event names. */
function sessionOf(event: SessionEvent): string {
  if (event.event !== 'connected') throw new Error(`expected a connected event first, got ${event.event}`);
  return event.info.sessionId;
}

/** How a promise settled, and after how long; never rejects, so it can be awaited later. */
function settle(
  promise: Promise<unknown>,
): Promise<{ resolved: boolean; value?: unknown; error?: unknown; ms: number }> {
  const started = performance.now();
  return promise.then(
    (value) => ({ resolved: true, value, ms: performance.now() - started }),
    (error: unknown) => ({ resolved: false, error, ms: performance.now() - started }),
  );
}

/** Every fault bound, with its default filled in from the case's session timeout. */
function resolveBounds(faults: AllocatorBackendFaults | undefined): {
  shortFreeze: Required<Omit<ShortFreezeBounds, 'silenceBeforeDisconnected' | 'disconnectedReason'>> &
    Pick<ShortFreezeBounds, 'silenceBeforeDisconnected' | 'disconnectedReason'>;
  longFreeze: Required<LongFreezeBounds>;
  restart: Required<RestartBounds>;
  partition: Required<PartitionBounds>;
} {
  const given = faults?.bounds ?? {};
  const short = given.shortFreeze ?? {};
  const shortSession = short.sessionTimeout ?? 6_000;
  const long = given.longFreeze ?? {};
  const longSession = long.sessionTimeout ?? 3_000;
  const longConnect = long.connectTimeout ?? 2_000;
  const restart = given.restart ?? {};
  const restartSession = restart.sessionTimeout ?? 8_000;
  const partition = given.partition ?? {};
  const partitionSession = partition.sessionTimeout ?? 3_000;
  return {
    shortFreeze: {
      sessionTimeout: shortSession,
      connectTimeout: short.connectTimeout ?? 5_000,
      disconnectedWithin: short.disconnectedWithin ?? shortSession / 2,
      silenceBeforeDisconnected: short.silenceBeforeDisconnected,
      disconnectedReason: short.disconnectedReason,
      callFailsWithin: short.callFailsWithin ?? 5_500,
      reconnectedWithin: short.reconnectedWithin ?? shortSession,
      contactWithin: short.contactWithin ?? shortSession / 2,
    },
    longFreeze: {
      sessionTimeout: longSession,
      connectTimeout: longConnect,
      disconnectedWithin: long.disconnectedWithin ?? longSession / 2,
      expiredNotBefore: long.expiredNotBefore ?? longSession,
      expiredWithin: long.expiredWithin ?? 2 * longSession,
      connectFailsWithin: long.connectFailsWithin ?? longConnect + 1_000,
      staleGoneWithin: long.staleGoneWithin ?? 3 * longSession,
    },
    restart: {
      sessionTimeout: restartSession,
      connectTimeout: restart.connectTimeout ?? 5_000,
      disconnectedWithin: restart.disconnectedWithin ?? restartSession,
      reconnectedWithin: restart.reconnectedWithin ?? restartSession,
      watchWithin: restart.watchWithin ?? 5_000,
    },
    partition: {
      sessionTimeout: partitionSession,
      connectTimeout: partition.connectTimeout ?? 5_000,
      disconnectedWithin: partition.disconnectedWithin ?? partitionSession / 2,
      freedWithin: partition.freedWithin ?? 3 * partitionSession,
      expiredWithin: partition.expiredWithin ?? 3 * partitionSession,
      watchWithin: partition.watchWithin ?? 5_000,
    },
  };
}
