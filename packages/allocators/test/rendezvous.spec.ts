import fc from 'fast-check';
import { createRendezvous, rendezvous } from '../src';
import type { Assignment } from '../src';
import { fmix32, murmur3 } from '../src/hash';
import { RENDEZVOUS_PARAMETERS as P } from '../src/strategies/rendezvous';
import { countOf, membersArb, ownerOf, partitionsArb } from './helpers';

/**
 * The weight of member m for partition p, straight from the documented definition: the shortest clockwise distance
 * on the 32-bit ring from any of p's probes to any of m's points. No lookup tables, no shortcuts: this checks the
 * fast path (ring table, wrap-around, id hashing without strings) against the definition.
 */
const pointCache = new Map<string, number[]>();
function points(member: string): number[] {
  let result = pointCache.get(member);
  if (result === undefined) {
    const a = murmur3(member, P.memberSeeds[0]);
    const b = murmur3(member, P.memberSeeds[1]);
    result = Array.from({ length: P.pointsPerMember }, (_, v) =>
      fmix32(a ^ fmix32((b + Math.imul(v + 1, P.golden)) | 0)),
    );
    pointCache.set(member, result);
  }
  return result;
}

function probes(partition: string): number[] {
  const base = murmur3(partition, P.partitionSeed);
  return Array.from({ length: P.probes }, (_, k) => fmix32(base ^ Math.imul(k + 1, P.golden)));
}

function weight(member: string, partition: string): number {
  const starts = probes(partition);
  let best = Infinity;
  for (const point of points(member)) {
    for (const probe of starts) best = Math.min(best, (point - probe) >>> 0);
  }
  return best;
}

/** Members ranked for a partition: smallest weight first, ties to the id that sorts first. */
function ranking(members: string[], partition: string): string[] {
  const sorted = [...members].sort();
  const weights = new Map(sorted.map((m) => [m, weight(m, partition)]));
  return sorted.sort((x, y) => (weights.get(x) as number) - (weights.get(y) as number) || (x < y ? -1 : 1));
}

/** Partition order used for overflow: topics in code-unit order, numbers ascending. */
function ordered(partitions: string[]): string[] {
  const split = (id: string): [string, number] => [id.split(':')[0], Number(id.split(':')[1])];
  return [...partitions].sort((x, y) => {
    const [tx, nx] = split(x);
    const [ty, ny] = split(y);
    return tx < ty ? -1 : tx > ty ? 1 : nx - ny;
  });
}

/** Bounded rendezvous recomputed from its documented rule, for comparison. */
function boundedByDefinition(members: string[], partitions: string[], loadFactor: number): Map<string, string> {
  const cap = Math.ceil((loadFactor * partitions.length) / members.length);
  const order = ordered(partitions);
  const ranks = new Map(order.map((p) => [p, ranking(members, p)]));
  const owner = new Map(order.map((p) => [p, (ranks.get(p) as string[])[0]]));
  const loads = new Map(members.map((m) => [m, 0]));
  const spilled: string[] = [];
  for (const member of members) {
    const mine = order.filter((p) => owner.get(p) === member);
    // Keep the clearest wins (smallest weight; ties by partition order), spill the rest.
    mine.sort((x, y) => weight(member, x) - weight(member, y) || order.indexOf(x) - order.indexOf(y));
    loads.set(member, Math.min(cap, mine.length));
    spilled.push(...mine.slice(cap));
  }
  for (const p of ordered(spilled)) {
    const to = (ranks.get(p) as string[]).find((m) => (loads.get(m) as number) < cap) as string;
    owner.set(p, to);
    loads.set(to, (loads.get(to) as number) + 1);
  }
  return owner;
}

const asMap = (assignment: Assignment): Map<string, string> => ownerOf(assignment);

describe('rendezvous weight', () => {
  it('gives each partition to the member with the best weight, as defined', () => {
    fc.assert(
      fc.property(
        membersArb({ minLength: 1, maxLength: 6 }),
        partitionsArb({ maxLength: 25 }),
        (members, partitions) => {
          const owners = asMap(rendezvous(members, partitions));
          for (const partition of partitions) expect(owners.get(partition)).toBe(ranking(members, partition)[0]);
        },
      ),
      { numRuns: 25 },
    );
  });

  it('matches the definition where probes past the last point must wrap around to the first', () => {
    // Pick the pair of members whose ring has a wide empty stretch before 2^32 and a point just after 0, so that
    // probes in that stretch win often, and only by wrapping around.
    const candidates = Array.from({ length: 12 }, (_, i) => `member-${i}`);
    const pairs = candidates.flatMap((x, i) => candidates.slice(i + 1).map((y) => [x, y]));
    const arc = (pair: string[]): number => {
      const all = pair.flatMap(points);
      return 2 ** 32 - Math.max(...all) - 8 * Math.min(...all);
    };
    const members = pairs.reduce((best, pair) => (arc(pair) > arc(best) ? pair : best));
    const partitions = Array.from({ length: 1500 }, (_, i) => `t-${i % 3}:${i}`);
    const owners = asMap(rendezvous(members, partitions));
    const mismatches = partitions.filter((p) => owners.get(p) !== ranking(members, p)[0]);
    expect(mismatches).toStrictEqual([]);
  });

  it('bounded: matches the documented overflow rule', () => {
    fc.assert(
      fc.property(
        membersArb({ minLength: 1, maxLength: 5 }),
        partitionsArb({ maxLength: 25 }),
        fc.constantFrom(1, 1.25),
        (members, partitions, loadFactor) => {
          const actual = asMap(createRendezvous({ loadFactor })(members, partitions));
          expect(actual).toStrictEqual(boundedByDefinition(members, partitions, loadFactor));
        },
      ),
      { numRuns: 25 },
    );
  });

  it('loadFactor 1 gives counts within ceil(P/n)', () => {
    const members = ['a', 'b', 'c'];
    const partitions = Array.from({ length: 10 }, (_, i) => `t:${i}`);
    const assignment = createRendezvous({ loadFactor: 1 })(members, partitions);
    for (const member of members) expect(countOf(assignment, member)).toBeLessThanOrEqual(4);
  });
});
