import fc from 'fast-check';
import { createRendezvous, naive, range, rendezvous, roundRobin, sticky, strategies, validate, weighted } from '../src';
import type { Assignment, Strategy, StrategyContext } from '../src';
import {
  countOf,
  membersArb,
  mixForms,
  partitionsArb,
  reorder,
  shuffle,
  spread,
  topicCountOf,
  TOPICS,
} from './helpers';

const bounded = createRendezvous({ loadFactor: 1.25 });
const ALL: Array<[string, Strategy]> = [...Object.entries(strategies), ['rendezvous(loadFactor 1.25)', bounded]];
const RUNS = { numRuns: 60 };

/** Members, partitions, and a realistic context: a previous assignment over other members, and some weights. */
const inputArb = fc
  .record({
    members: membersArb({ maxLength: 9 }),
    partitions: partitionsArb({ maxLength: 50 }),
    formerMembers: membersArb({ maxLength: 6 }),
    weightsSeed: fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 9 }),
    seed: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  })
  .map(({ members, partitions, formerMembers, weightsSeed, seed }) => {
    // Previous owners: some current members, some departed ones, over a partition set that has changed a little.
    const previousMembers = [...new Set([...members.slice(0, members.length - 1), ...formerMembers])];
    const previousPartitions = partitions.slice(1).concat(['t:99']);
    const previous = previousMembers.length > 0 ? roundRobin(shuffle(previousMembers, seed), previousPartitions) : {};
    const weights: Record<string, number> = {};
    members.forEach((member, i) => {
      if (i < weightsSeed.length) weights[member] = weightsSeed[i];
    });
    const context: StrategyContext = { previous, weights };
    return { members, partitions, context, seed };
  });

function total(assignment: Assignment): number {
  return Object.keys(assignment).reduce((sum, member) => sum + countOf(assignment, member), 0);
}

describe.each(ALL)('%s', (_name, strategy) => {
  it('is deterministic under any input order and partition form', () => {
    fc.assert(
      fc.property(inputArb, ({ members, partitions, context, seed }) => {
        const expected = strategy(members, partitions, context);
        const shuffledContext: StrategyContext = {
          previous: reorder(context.previous ?? {}, seed),
          weights: Object.fromEntries(shuffle(Object.entries(context.weights ?? {}), seed)),
        };
        const again = strategy(shuffle(members, seed), mixForms(shuffle(partitions, seed + 3), seed), shuffledContext);
        expect(again).toStrictEqual(expected);
      }),
      RUNS,
    );
  });

  it('assigns each partition exactly once, to given members only', () => {
    fc.assert(
      fc.property(inputArb, ({ members, partitions, context }) => {
        const assignment = strategy(members, partitions, context);
        if (members.length === 0) {
          expect(assignment).toStrictEqual({});
          return;
        }
        expect(validate(assignment, members, partitions)).toStrictEqual([]);
        expect(total(assignment)).toBe(partitions.length);
        for (const member of Object.keys(assignment)) {
          expect(members).toContain(member);
          expect(countOf(assignment, member)).toBeGreaterThan(0);
        }
      }),
      RUNS,
    );
  });

  it('returns plain JSON that survives a round trip', () => {
    fc.assert(
      fc.property(inputArb, ({ members, partitions, context }) => {
        const assignment = strategy(members, partitions, context);
        expect(JSON.parse(JSON.stringify(assignment))).toStrictEqual(assignment);
      }),
      { numRuns: 20 },
    );
  });
});

describe('stated balance bounds', () => {
  const counts = (assignment: Assignment, members: string[]): number[] => members.map((m) => countOf(assignment, m));
  const topicsOf = (partitions: string[]): string[] => [...new Set(partitions.map((id) => id.split(':')[0]))];

  it('naive and roundRobin: within 1 overall and within 1 per topic', () => {
    fc.assert(
      fc.property(inputArb, ({ members, partitions }) => {
        for (const strategy of [naive, roundRobin]) {
          const assignment = strategy(members, partitions);
          expect(spread(counts(assignment, members))).toBeLessThanOrEqual(1);
          for (const topic of topicsOf(partitions)) {
            expect(spread(members.map((m) => topicCountOf(assignment, m, topic)))).toBeLessThanOrEqual(1);
          }
        }
      }),
      RUNS,
    );
  });

  it('range: within 1 per topic, contiguous, within the topic count overall', () => {
    fc.assert(
      fc.property(inputArb, ({ members, partitions }) => {
        const assignment = range(members, partitions);
        const topics = topicsOf(partitions);
        expect(spread(counts(assignment, members))).toBeLessThanOrEqual(topics.length);
        for (const topic of topics) {
          expect(spread(members.map((m) => topicCountOf(assignment, m, topic)))).toBeLessThanOrEqual(1);
          // Contiguous: each member's numbers are a run of the topic's sorted numbers.
          const sorted = partitions
            .filter((id) => id.split(':')[0] === topic)
            .map((id) => Number(id.split(':')[1]))
            .sort((a, b) => a - b);
          for (const member of members) {
            const mine = assignment[member]?.[topic] ?? [];
            if (mine.length === 0) continue;
            const start = sorted.indexOf(mine[0]);
            expect(mine).toStrictEqual(sorted.slice(start, start + mine.length));
          }
        }
      }),
      RUNS,
    );
  });

  it('sticky: within 1 overall, whatever the previous assignment', () => {
    fc.assert(
      fc.property(inputArb, ({ members, partitions, context }) => {
        expect(spread(counts(sticky(members, partitions, context), members))).toBeLessThanOrEqual(1);
      }),
      RUNS,
    );
  });

  it('sticky without previous equals roundRobin', () => {
    fc.assert(
      fc.property(inputArb, ({ members, partitions }) => {
        expect(sticky(members, partitions)).toStrictEqual(roundRobin(members, partitions));
      }),
      RUNS,
    );
  });

  it('weighted: every count is its quota rounded down or up (missing weight = 1)', () => {
    fc.assert(
      fc.property(inputArb, ({ members, partitions, context }) => {
        const assignment = weighted(members, partitions, context);
        const weightOf = (m: string): number => context.weights?.[m] ?? 1;
        const sum = members.reduce((s, m) => s + weightOf(m), 0);
        for (const member of members) {
          // Integer weights: the exact quota is the rational P*w/W.
          const numerator = partitions.length * weightOf(member);
          const low = Math.floor(numerator / sum);
          const high = numerator % sum === 0 ? low : low + 1;
          const count = countOf(assignment, member);
          expect(count).toBeGreaterThanOrEqual(low);
          expect(count).toBeLessThanOrEqual(high);
        }
      }),
      RUNS,
    );
  });

  it('weighted with equal weights behaves as sticky', () => {
    fc.assert(
      fc.property(inputArb, ({ members, partitions, context }) => {
        const weights = Object.fromEntries(members.map((m) => [m, 3]));
        expect(weighted(members, partitions, { previous: context.previous, weights })).toStrictEqual(
          sticky(members, partitions, { previous: context.previous }),
        );
      }),
      RUNS,
    );
  });

  it('bounded rendezvous: no member above ceil(loadFactor * P / n)', () => {
    fc.assert(
      fc.property(inputArb, fc.constantFrom(1, 1.1, 1.25, 2), ({ members, partitions }, loadFactor) => {
        fc.pre(members.length > 0);
        const assignment = createRendezvous({ loadFactor })(members, partitions);
        const cap = Math.ceil((loadFactor * partitions.length) / members.length);
        for (const member of members) expect(countOf(assignment, member)).toBeLessThanOrEqual(cap);
      }),
      RUNS,
    );
  });

  it('plain rendezvous: shares close to P/n at a larger size (statistical bound)', () => {
    const members = Array.from({ length: 50 }, (_, i) => `host-${i}:${4000 + i}`);
    const partitions = TOPICS.flatMap((topic) => Array.from({ length: 1000 }, (_, p) => `${topic}:${p}`));
    const mean = partitions.length / members.length;
    const shares = counts(rendezvous(members, partitions), members);
    // Mean 120, binomial σ about 11; ±48 is ±4.4σ, room for the ring's few percent of systematic skew.
    expect(Math.min(...shares)).toBeGreaterThan(mean * 0.6);
    expect(Math.max(...shares)).toBeLessThan(mean * 1.4);
  });
});
