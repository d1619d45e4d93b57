import { describe, expect, it } from '@jest/globals';
import type { AllocatorBackend } from '../../src/backend/types';
import { FencingClock } from '../../src/group/fencing';

/** The two fields of a backend the clock reads. */
function fakeBackend(): { backend: AllocatorBackend; lastContact: number; state: string } {
  const fake = { lastContact: performance.now(), state: 'connected' };
  return Object.assign(fake, { backend: fake as unknown as AllocatorBackend });
}

describe('FencingClock', () => {
  it('fences past the timeout, only once, and unfences when contact is back on a connected session', () => {
    const b = fakeBackend();
    const log: string[] = [];
    let active = true;
    const clock = new FencingClock(b.backend, () => 1_000, {
      fence: (silent) => log.push(`fence ${silent > 1_000}`),
      unfence: () => log.push('unfence'),
      active: () => active,
    });
    clock.check();
    b.lastContact = performance.now() - 1_500;
    clock.check();
    clock.check();
    // Contact is fresh but the backend is not connected yet: still fenced.
    b.lastContact = performance.now();
    b.state = 'disconnected';
    clock.check();
    const fencedWhileDisconnected = clock.fenced;
    b.state = 'connected';
    clock.check();
    // Not read while inactive (stopping, or not joined).
    active = false;
    b.lastContact = performance.now() - 5_000;
    clock.check();
    expect({ log, fencedWhileDisconnected, fenced: clock.fenced }).toEqual({
      log: ['fence true', 'unfence'],
      fencedWhileDisconnected: true,
      fenced: false,
    });
  });

  it('reset() lowers the fence without an unfence, and says whether it was up', () => {
    const b = fakeBackend();
    const log: string[] = [];
    const clock = new FencingClock(b.backend, () => 100, {
      fence: () => log.push('fence'),
      unfence: () => log.push('unfence'),
      active: () => true,
    });
    b.lastContact = performance.now() - 500;
    clock.check();
    expect([clock.reset(), clock.reset(), clock.fenced, log]).toEqual([true, false, false, ['fence']]);
  });

  it('reads the clock on its own once started, until stopped', async () => {
    const b = fakeBackend();
    let fences = 0;
    const clock = new FencingClock(b.backend, () => 80, {
      fence: () => fences++,
      unfence: () => undefined,
      active: () => true,
    });
    b.lastContact = performance.now() - 200;
    clock.start();
    await new Promise((resolve) => setTimeout(resolve, 60));
    clock.stop();
    const afterStart = fences;
    clock.reset();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect([afterStart, fences]).toEqual([1, 1]);
  });
});
