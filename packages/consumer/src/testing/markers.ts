// The marker cases: persistent values per partition, last write wins, outliving their writer.
import { claimValue, type SuiteContext } from './harness';

/** Registers the markers cases. */
export function markerCases({ runner: { describe, it, expect }, t, caseTimeout }: SuiteContext): void {
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
}
