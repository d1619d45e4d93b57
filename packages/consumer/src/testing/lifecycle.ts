// The lifecycle cases: a session opens, is idempotent to connect and close, and ends with everything it held.
import { memberInfo, claimValue, ids, delay, type SuiteContext } from './harness';

/** Registers the lifecycle cases. */
export function lifecycleCases({ runner: { describe, it, expect }, t, caseTimeout }: SuiteContext): void {
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
}
