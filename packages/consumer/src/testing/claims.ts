// The claim cases: exclusive under races, idempotent for the holder, released only by it, watched.
import { claimValue, type SuiteContext } from './harness';

/** Registers the claims cases. */
export function claimCases({ runner: { describe, it, expect }, t, caseTimeout, concurrency }: SuiteContext): void {
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
}
