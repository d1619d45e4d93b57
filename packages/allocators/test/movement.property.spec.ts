import fc from 'fast-check';
import { createRendezvous, rendezvous, sticky, validate, weighted } from '../src';
import type { Assignment } from '../src';
import { countOf, membersArb, movedBetween, ownerOf, partitionsArb } from './helpers';

const RUNS = { numRuns: 80 };

/** A group, one member that leaves (by position) and a fresh id that joins. */
const changeArb = fc.record({
  members: membersArb({ minLength: 1, maxLength: 9 }),
  partitions: partitionsArb({ maxLength: 60 }),
  leaver: fc.nat(),
  weights: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 10, maxLength: 10 }),
});
const NEWCOMER = 'newcomer:1:ffff';

function without<T>(items: readonly T[], index: number): T[] {
  return items.filter((_, i) => i !== index);
}

describe('sticky: one join or leave moves exactly the minimum possible', () => {
  it('leave: moves only the leaver’s partitions', () => {
    fc.assert(
      fc.property(changeArb, ({ members, partitions, leaver }) => {
        const before = sticky(members, partitions);
        const gone = members[leaver % members.length];
        const rest = without(members, leaver % members.length);
        const after = sticky(rest, partitions, { previous: before });
        if (rest.length > 0) expect(validate(after, rest, partitions)).toStrictEqual([]);
        // The leaver's partitions must find new owners; nothing else has to move.
        expect(movedBetween(before, after)).toBe(members.length === 1 ? 0 : countOf(before, gone));
      }),
      RUNS,
    );
  });

  it('join: moves exactly the floor(P/(n+1)) partitions the newcomer must get', () => {
    fc.assert(
      fc.property(changeArb, ({ members, partitions }) => {
        fc.pre(!members.includes(NEWCOMER));
        const before = sticky(members, partitions);
        const after = sticky([...members, NEWCOMER], partitions, { previous: before });
        expect(validate(after, [...members, NEWCOMER], partitions)).toStrictEqual([]);
        expect(movedBetween(before, after)).toBe(Math.floor(partitions.length / (members.length + 1)));
        expect(countOf(after, NEWCOMER)).toBe(Math.floor(partitions.length / (members.length + 1)));
      }),
      RUNS,
    );
  });
});

/**
 * The fewest moves any assignment can make while giving every member its quota rounded down or up, found by
 * trying every choice of which members round up (small groups only). For fixed counts, keeping
 * `min(held, count)` per member is the most that can stay.
 */
function minimumMoves(before: Assignment, members: string[], partitions: string[], weightOf: (m: string) => number) {
  const current = new Set(partitions);
  const owners = ownerOf(before);
  const held = members.map((m) => [...owners].filter(([id, owner]) => owner === m && current.has(id)).length);
  const carried = [...owners.keys()].filter((id) => current.has(id)).length;
  const sum = members.reduce((s, m) => s + weightOf(m), 0);
  const floors = members.map((m) => Math.floor((partitions.length * weightOf(m)) / sum));
  const fractional = members.map((m) => (partitions.length * weightOf(m)) % sum !== 0);
  const seats = partitions.length - floors.reduce((a, b) => a + b, 0);
  let bestKept = -1;
  for (let mask = 0; mask < 1 << members.length; mask++) {
    let ups = 0;
    let kept = 0;
    let valid = true;
    members.forEach((_, i) => {
      const up = (mask >> i) & 1;
      if (up && !fractional[i]) valid = false;
      ups += up;
      kept += Math.min(held[i], floors[i] + up);
    });
    if (valid && ups === seats) bestKept = Math.max(bestKept, kept);
  }
  return carried - bestKept;
}

describe('weighted: one join or leave moves the fewest any quota-respecting assignment can', () => {
  it('leave', () => {
    fc.assert(
      fc.property(changeArb, ({ members, partitions, leaver, weights }) => {
        const weightOf = (m: string): number => (m === NEWCOMER ? 2 : (weights[members.indexOf(m)] ?? 1));
        const context = { weights: Object.fromEntries(members.map((m) => [m, weightOf(m)])) };
        const before = weighted(members, partitions, context);
        const rest = without(members, leaver % members.length);
        const after = weighted(rest, partitions, { ...context, previous: before });
        if (rest.length > 0) expect(validate(after, rest, partitions)).toStrictEqual([]);
        const minimum = rest.length === 0 ? 0 : minimumMoves(before, rest, partitions, weightOf);
        expect(movedBetween(before, after)).toBe(minimum);
        // And never less than the leaver's own partitions.
        if (rest.length > 0) expect(minimum).toBeGreaterThanOrEqual(countOf(before, members[leaver % members.length]));
      }),
      RUNS,
    );
  });

  it('join', () => {
    fc.assert(
      fc.property(changeArb, ({ members, partitions, weights }) => {
        fc.pre(!members.includes(NEWCOMER));
        const weightOf = (m: string): number => (m === NEWCOMER ? 2 : (weights[members.indexOf(m)] ?? 1));
        const grown = [...members, NEWCOMER];
        const context = { weights: Object.fromEntries(grown.map((m) => [m, weightOf(m)])) };
        const before = weighted(members, partitions, context);
        const after = weighted(grown, partitions, { ...context, previous: before });
        expect(validate(after, grown, partitions)).toStrictEqual([]);
        expect(movedBetween(before, after)).toBe(minimumMoves(before, grown, partitions, weightOf));
      }),
      RUNS,
    );
  });
});

describe('rendezvous: one join or leave moves only what changes hands to or from that member', () => {
  it('leave: exactly the leaver’s partitions move, everything else stays', () => {
    fc.assert(
      fc.property(changeArb, ({ members, partitions, leaver }) => {
        fc.pre(members.length > 1);
        const gone = members[leaver % members.length];
        const before = rendezvous(members, partitions);
        const after = rendezvous(without(members, leaver % members.length), partitions);
        expect(movedBetween(before, after)).toBe(countOf(before, gone));
      }),
      RUNS,
    );
  });

  it('join: exactly the partitions the newcomer wins move, all of them to it', () => {
    fc.assert(
      fc.property(changeArb, ({ members, partitions }) => {
        fc.pre(!members.includes(NEWCOMER));
        const before = rendezvous(members, partitions);
        const after = rendezvous([...members, NEWCOMER], partitions);
        expect(movedBetween(before, after)).toBe(countOf(after, NEWCOMER));
      }),
      RUNS,
    );
  });

  it('bounded: a leave or join at a realistic size stays within 1.2 × P/n', () => {
    // Movement of the bounded variant also depends on how the capacity shifts; checked at a size where P/n = 50.
    const members = Array.from({ length: 40 }, (_, i) => `host-${i}:${7000 + i}`);
    const partitions = Array.from({ length: 2000 }, (_, i) => `topic-${i % 4}:${Math.floor(i / 4)}`);
    const strategy = createRendezvous({ loadFactor: 1.25 });
    const before = strategy(members, partitions);
    const left = strategy(members.slice(1), partitions);
    const joined = strategy([...members, NEWCOMER], partitions);
    expect(movedBetween(before, left)).toBeLessThanOrEqual(1.2 * (partitions.length / members.length));
    expect(movedBetween(before, joined)).toBeLessThanOrEqual(1.2 * (partitions.length / members.length));
  });
});
