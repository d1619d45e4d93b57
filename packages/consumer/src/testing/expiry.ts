// The session-expiry cases: `expired`, the ephemerals gone for the others, calls refused, and a new session after
// it. They need the `expireSession` hook; without it they are skipped under a title naming the hook.
import { claimValue, describeUnless, ids, memberInfo, type SuiteContext } from './harness';

/** Registers the session-expiry cases (skipped, visibly, without `options.expireSession`). */
export function expiryCases({ runner: { describe, it, expect }, t, options, timeouts }: SuiteContext): void {
  const expiryCaseTimeout = timeouts.test + 2 * timeouts.expiry;
  const expireSession = options.expireSession;
  // Without the hook, a backend cannot be made to expire on demand. The runner lists the skipped cases under a
  // title naming the hook, so a missing hook is visible in every run.
  const missing = expireSession ? undefined : 'no `expireSession` hook was given to runAllocatorBackendSuite';
  describeUnless(describe, missing, 'session expiry', () => {
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
        await own.until('the new entry', (list) => list.some((m) => m.info.id === 'victim' && m.order === after.order));
        expect(await victim.claim(group, 'orders:0', claimValue('victim'))).toBe(true);
        expect(await observer.readClaim(group, 'orders:0')).toMatchObject({ mine: false });
      },
      expiryCaseTimeout,
    );
  });
}
