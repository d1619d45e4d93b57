import * as fs from 'node:fs';
import * as path from 'node:path';
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
