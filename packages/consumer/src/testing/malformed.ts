// The malformed-data cases: a bad member entry is left out and reported; bad names and values are refused before any write.
import type { MemberInfo } from '../backend/types';
import { isBackendError } from '../backend/errors';
import { memberInfo, ids, type SuiteContext } from './harness';

/** Registers the malformed data cases. */
export function malformedDataCases({ runner: { describe, it, expect }, t, caseTimeout }: SuiteContext): void {
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
}
