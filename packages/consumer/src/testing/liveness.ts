// The liveness case: `lastContact` advances while connected.
import { performance } from 'node:perf_hooks';
import type { SuiteContext } from './harness';

/** Registers the liveness cases. */
export function livenessCases({ runner: { describe, it, expect }, t, caseTimeout, timeouts }: SuiteContext): void {
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
}
