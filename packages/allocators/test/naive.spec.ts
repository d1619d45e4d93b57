import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { naive } from '../src';
import { mixForms, shuffle } from './helpers';

/**
 * Golden vectors for kiel's round robin. Copied from the project's shared vectors
 * (`shared/vectors/naive-allocator.json`, computed with the reference implementation's algorithm); kept here as
 * data so the suite does not depend on a path outside the repository.
 */
interface VectorCase {
  name: string;
  members: string[];
  partitions: string[];
  expected: Record<string, Record<string, number[]>>;
}
const vectors = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', 'naive-allocator.json'), 'utf8')) as {
  cases: VectorCase[];
};

describe('naive: golden vectors', () => {
  it('has the vector file with cases', () => {
    expect(vectors.cases.length).toBeGreaterThan(10);
  });

  it.each(vectors.cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    // toStrictEqual compares arrays in order, so the order of ids within each topic is checked too.
    expect(naive(c.members, c.partitions)).toStrictEqual(c.expected);
  });

  it.each(vectors.cases.map((c) => [c.name, c] as const))(
    '%s: same answer for any input order and form',
    (_name, c) => {
      for (const seed of [1, 7, 99]) {
        const members = shuffle(c.members, seed);
        const partitions = mixForms(shuffle(c.partitions, seed + 1), seed);
        expect(naive(members, partitions)).toStrictEqual(c.expected);
      }
    },
  );

  it('sorts ids as plain strings, so t:10 is dealt before t:2', () => {
    expect(naive(['a', 'b'], ['t:2', 't:10', 't:1'])).toStrictEqual({ a: { t: [1, 2] }, b: { t: [10] } });
  });
});

describe('naive: against kiel’s algorithm written out literally', () => {
  /** kiel's naive_allocator: zip(cycle(sorted members), sorted partition strings). */
  function literal(members: string[], partitions: string[]): Record<string, Record<string, number[]>> {
    const result: Record<string, Record<string, number[]>> = {};
    const sortedMembers = [...members].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const sortedIds = [...partitions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    if (sortedMembers.length === 0) return result;
    sortedIds.forEach((id, i) => {
      const member = sortedMembers[i % sortedMembers.length];
      const [topic, partition] = id.split(':');
      ((result[member] ??= {})[topic] ??= []).push(Number(partition));
    });
    return result;
  }

  it('matches on random inputs, including numbers of every length up to 2^31-1', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 4 }), { maxLength: 7 }),
        fc.uniqueArray(
          fc
            .record({
              topic: fc.constantFrom('t', 't.x', 't0', 'T', 'a_b'),
              partition: fc.oneof(fc.nat({ max: 120 }), fc.nat({ max: 2147483647 })),
            })
            .map(({ topic, partition }) => `${topic}:${partition}`),
          { maxLength: 80 },
        ),
        (members, partitions) => {
          expect(naive(members, partitions)).toStrictEqual(literal(members, partitions));
        },
      ),
      { numRuns: 150 },
    );
  });
});
