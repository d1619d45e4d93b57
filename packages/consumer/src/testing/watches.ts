// The watch cases: the current state on subscription, unsubscribe, no change missed under churn, throwing listeners.
import { memberInfo, claimValue, ids, summary, sameMembers, delay, type SuiteContext } from './harness';

/** Registers the watches cases. */
export function watchCases({ runner: { describe, it, expect }, t, caseTimeout, concurrency }: SuiteContext): void {
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
}
