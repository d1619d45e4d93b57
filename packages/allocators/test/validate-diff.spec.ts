import fc from 'fast-check';
import { AllocationError, diff, sticky, validate } from '../src';
import type { Assignment } from '../src';
import { membersArb, ownerOf, partitionsArb } from './helpers';

const codes = (problems: ReturnType<typeof validate>): string[] => problems.map((p) => p.code);

describe('validate', () => {
  const members = ['a', 'b'];
  const partitions = ['t:0', 't:1', 'u:0'];

  it('accepts a correct assignment', () => {
    expect(validate({ a: { t: [0, 1] }, b: { u: [0] } }, members, partitions)).toStrictEqual([]);
  });

  it('reports a missing partition, naming it', () => {
    expect(validate({ a: { t: [0, 1] } }, members, partitions)).toStrictEqual([
      { code: 'ERR_MISSING_PARTITION', message: expect.any(String), partition: 'u:0' },
    ]);
  });

  it('reports a partition given twice, to one member or to two', () => {
    const twice = validate({ a: { t: [0, 1, 1] }, b: { t: [0], u: [0] } }, members, partitions);
    expect(twice).toStrictEqual([
      { code: 'ERR_DUPLICATE_ASSIGNMENT', message: expect.stringContaining('a twice'), member: 'a', partition: 't:1' },
      {
        code: 'ERR_DUPLICATE_ASSIGNMENT',
        message: expect.stringContaining('both a and b'),
        member: 'b',
        partition: 't:0',
      },
    ]);
  });

  it('reports an unknown member, and counts its partitions as unassigned', () => {
    const problems = validate({ a: { t: [0, 1] }, ghost: { u: [0] } }, members, partitions);
    expect(problems).toStrictEqual([
      { code: 'ERR_UNKNOWN_MEMBER', message: expect.any(String), member: 'ghost' },
      { code: 'ERR_MISSING_PARTITION', message: expect.any(String), partition: 'u:0' },
    ]);
  });

  it('reports malformed and unknown partitions in the assignment', () => {
    const problems = validate({ a: { t: [0, 1, -1, 2], 'bad topic': [0] }, b: { u: [0] } }, members, partitions);
    expect(problems).toStrictEqual([
      { code: 'ERR_INVALID_PARTITION_ID', message: expect.any(String), member: 'a', partition: 't:-1' },
      { code: 'ERR_UNKNOWN_PARTITION', message: expect.any(String), member: 'a', partition: 't:2' },
      { code: 'ERR_INVALID_PARTITION_ID', message: expect.any(String), member: 'a', partition: 'bad topic:0' },
    ]);
  });

  it('reports bad members and partition sets instead of throwing', () => {
    const problems = validate({ a: { t: [0] } }, ['a', 'a', ''], ['t:0', 't:0', 'nope']);
    expect(codes(problems)).toStrictEqual([
      'ERR_DUPLICATE_MEMBER',
      'ERR_INVALID_MEMBER',
      'ERR_DUPLICATE_PARTITION',
      'ERR_INVALID_PARTITION_ID',
    ]);
    expect(problems[3].partition).toBe('nope');
  });

  it.each([[null], ['x'], [[]], [{ a: 5 }], [{ a: { t: 'x' } }]])('reports a malformed assignment %p', (bad) => {
    expect(codes(validate(bad, ['a'], []))).toContain('ERR_INVALID_ASSIGNMENT');
  });

  it('accepts { topic, partition } objects in the partition set', () => {
    expect(validate({ a: { t: [3] } }, ['a'], [{ topic: 't', partition: 3 }])).toStrictEqual([]);
  });
});

describe('diff', () => {
  it('reports per-member added and revoked, moved, appeared and disappeared', () => {
    const before: Assignment = { a: { t: [0, 1], gone: [0] }, b: { t: [2] } };
    const after: Assignment = { a: { t: [0] }, b: { t: [2, 1] }, c: { t: [3] } };
    expect(diff(before, after)).toStrictEqual({
      members: {
        a: { added: [], revoked: ['gone:0', 't:1'] },
        b: { added: ['t:1'], revoked: [] },
        c: { added: ['t:3'], revoked: [] },
      },
      moved: [{ partition: 't:1', from: 'a', to: 'b' }],
      appeared: ['t:3'],
      disappeared: ['gone:0'],
      unchanged: 2,
    });
  });

  it('is empty between equal assignments listed in different orders', () => {
    const result = diff({ a: { t: [0, 1] }, b: { u: [0] } }, { b: { u: [0] }, a: { t: [1, 0] } });
    expect(result).toStrictEqual({ members: {}, moved: [], appeared: [], disappeared: [], unchanged: 3 });
  });

  it('agrees with an independent count on random pairs, and its lists are consistent', () => {
    fc.assert(
      fc.property(
        membersArb({ minLength: 1, maxLength: 6 }),
        membersArb({ minLength: 1, maxLength: 6 }),
        partitionsArb({ maxLength: 40 }),
        (first, second, partitions) => {
          const before = sticky(first, partitions);
          const after = sticky(second, partitions.slice(2), { previous: before });
          const result = diff(before, after);
          const was = ownerOf(before);
          const is = ownerOf(after);
          const moved = [...is].filter(([id, owner]) => was.has(id) && was.get(id) !== owner).map(([id]) => id);
          expect(result.moved.map((m) => m.partition).sort()).toStrictEqual(moved.sort());
          for (const { partition, from, to } of result.moved) {
            expect(result.members[from].revoked).toContain(partition);
            expect(result.members[to].added).toContain(partition);
          }
          const added = Object.values(result.members).reduce((s, m) => s + m.added.length, 0);
          expect(added).toBe(result.moved.length + result.appeared.length);
          expect(result.unchanged + result.moved.length + result.appeared.length).toBe(is.size);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('throws a typed error on a partition assigned twice', () => {
    expect(() => diff({ a: { t: [0] }, b: { t: [0] } }, {})).toThrow(
      expect.objectContaining({ code: 'ERR_DUPLICATE_ASSIGNMENT', partition: 't:0', member: 'b' }),
    );
    expect(() => diff({}, { a: { t: [-1] } })).toThrow(AllocationError);
    expect(() => diff({}, null as unknown as Assignment)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ASSIGNMENT' }),
    );
  });
});
