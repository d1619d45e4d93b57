import { describe, expect, it } from '@jest/globals';
import { PartitionPhases } from '../../src/group/handoff';

describe('PartitionPhases', () => {
  it('walks a partition through a whole handoff, and answers isHeld in the phases that hold the claim', () => {
    const phases = new PartitionPhases();
    const seen: Array<[string, boolean]> = [];
    const slot = phases.claim('t:0');
    seen.push([phases.phaseOf('t:0'), phases.isHeld('t:0')]);
    for (const to of ['assigning', 'owned', 'revoking', 'halted', 'assigning', 'owned', 'revoking'] as const) {
      phases.move(slot, to);
      seen.push([phases.phaseOf('t:0'), phases.isHeld('t:0')]);
    }
    phases.move(slot, 'idle');
    seen.push([phases.phaseOf('t:0'), phases.isHeld('t:0')]);
    expect(seen).toEqual([
      ['claiming', false],
      ['assigning', true],
      ['owned', true],
      ['revoking', true],
      ['halted', true],
      ['assigning', true],
      ['owned', true],
      ['revoking', true],
      ['idle', false],
    ]);
  });

  it.each([
    [[], 'owned'],
    [['assigning'], 'claiming'],
    [['assigning', 'owned'], 'idle'],
    [['assigning', 'owned'], 'halted'],
    [['releasing'], 'owned'],
    [['stray'], 'owned'],
  ] as const)('refuses the move after claiming, %j, to %s', (path, to) => {
    const phases = new PartitionPhases();
    const slot = phases.claim('t:1');
    for (const step of path) phases.move(slot, step);
    const from = phases.phaseOf('t:1');
    expect(() => phases.move(slot, to)).toThrow(`no move of t:1 from ${from} to ${to}`);
    // A refused move changes nothing.
    expect(phases.phaseOf('t:1')).toBe(from);
  });

  it('refuses a claim of a partition that is already held', () => {
    const phases = new PartitionPhases();
    phases.move(phases.claim('t:2'), 'assigning');
    expect(() => phases.claim('t:2')).toThrow('no move of t:2 from assigning to claiming');
  });

  it('a claim from releasing or stray takes a new slot, and the old slot can no longer move it', () => {
    const phases = new PartitionPhases();
    const first = phases.claim('t:3');
    phases.move(first, 'releasing');
    const second = phases.claim('t:3');
    expect(second).not.toBe(first);
    expect(phases.holds(first)).toBe(false);
    expect(() => phases.move(first, 'idle')).toThrow('moved by a step of an older slot');
    expect(phases.phaseOf('t:3')).toBe('claiming');
  });

  it('keeps its counts in step with the phases through claims from releasing, moves and clear()', () => {
    const phases = new PartitionPhases();
    const a = phases.claim('t:7');
    phases.move(a, 'assigning');
    phases.move(a, 'owned');
    const b = phases.claim('t:8');
    phases.move(b, 'releasing');
    const b2 = phases.claim('t:8'); // a new slot from releasing: the old one no longer counts
    const c = phases.claim('t:9');
    phases.move(c, 'stray');
    const counted = () => ({ busy: phases.busy, heldCount: phases.heldCount });
    const scanned = () => ({
      busy: phases.all().some((s) => ['claiming', 'assigning', 'revoking'].includes(s.phase)),
      heldCount: phases.held().length,
    });
    const seen = [counted(), scanned()];
    phases.move(b2, 'idle');
    phases.move(a, 'revoking');
    seen.push(counted(), scanned());
    phases.move(a, 'idle');
    seen.push(counted(), scanned());
    expect(seen).toEqual([
      { busy: true, heldCount: 1 },
      { busy: true, heldCount: 1 },
      { busy: true, heldCount: 1 },
      { busy: true, heldCount: 1 },
      { busy: false, heldCount: 0 },
      { busy: false, heldCount: 0 },
    ]);
  });

  it('a claim from releasing does not take the old release with it', () => {
    // The new claim waits for the old release; a later release of the new claim must be made afresh, not answered by
    // the old one (found by the property test: the claim stayed, and the next owner waited for it for good).
    const phases = new PartitionPhases();
    const first = phases.claim('t:6');
    phases.move(first, 'releasing');
    first.release = Promise.resolve(true);
    const second = phases.claim('t:6');
    expect(second.release).toBeUndefined();
  });

  it('clear() ends every phase, and busy and held follow the phases', () => {
    const phases = new PartitionPhases();
    const a = phases.claim('t:4');
    const b = phases.claim('t:5');
    phases.move(a, 'assigning');
    phases.move(a, 'owned');
    expect({ busy: phases.busy, held: phases.held(), heldCount: phases.heldCount }).toEqual({
      busy: true,
      held: ['t:4'],
      heldCount: 1,
    });
    phases.move(b, 'stray');
    expect({ busy: phases.busy, held: phases.held(), strays: phases.inPhase('stray').map((s) => s.id) }).toEqual({
      busy: false,
      held: ['t:4'],
      strays: ['t:5'],
    });
    phases.clear();
    expect({
      busy: phases.busy,
      held: phases.held(),
      heldCount: phases.heldCount,
      a: phases.holds(a),
      b: phases.holds(b),
    }).toEqual({
      busy: false,
      held: [],
      heldCount: 0,
      a: false,
      b: false,
    });
  });
});
