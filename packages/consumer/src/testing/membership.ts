// The membership cases: join and leave as others see them, the creation order, named members, groups apart.
import type { Member, MemberInfo } from '../backend/types';
import { memberInfo, ids, summary, type SuiteContext } from './harness';

/** Registers the membership cases. */
export function membershipCases({ runner: { describe, it, expect }, t, caseTimeout }: SuiteContext): void {
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
}
