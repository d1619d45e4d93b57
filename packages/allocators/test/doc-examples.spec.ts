import { diff, naive, range, roundRobin, sticky, strategies, validate, weighted } from '../src';

// The @example lines in the doc comments, checked so the docs cannot drift from the code.
describe('doc comment examples', () => {
  it('naive', () => {
    expect(naive(['b', 'a'], ['t:0', 't:1', 't:2'])).toStrictEqual({ a: { t: [0, 2] }, b: { t: [1] } });
  });

  it('range', () => {
    expect(range(['a', 'b'], ['t:0', 't:1', 't:2'])).toStrictEqual({ a: { t: [0, 1] }, b: { t: [2] } });
  });

  it('roundRobin', () => {
    expect(roundRobin(['a', 'b'], ['t:0', 't:1', 'u:0'])).toStrictEqual({ a: { t: [0], u: [0] }, b: { t: [1] } });
  });

  it('sticky', () => {
    expect(
      sticky(['a', 'b', 'c'], ['t:0', 't:1', 't:2'], { previous: { a: { t: [0, 1] }, b: { t: [2] } } }),
    ).toStrictEqual({ a: { t: [0] }, b: { t: [2] }, c: { t: [1] } });
  });

  it('weighted', () => {
    expect(weighted(['a', 'b'], ['t:0', 't:1', 't:2'], { weights: { a: 2 } })).toStrictEqual({
      a: { t: [0, 2] },
      b: { t: [1] },
    });
  });

  it('validate', () => {
    const problems = validate({ a: { t: [0, 0] }, z: { t: [1] } }, ['a', 'b'], ['t:0', 't:1', 't:2']);
    expect(problems.map((p) => [p.code, p.member ?? p.partition])).toStrictEqual([
      ['ERR_DUPLICATE_ASSIGNMENT', 'a'],
      ['ERR_UNKNOWN_MEMBER', 'z'],
      ['ERR_MISSING_PARTITION', 't:1'],
      ['ERR_MISSING_PARTITION', 't:2'],
    ]);
  });

  it('diff', () => {
    expect(diff({ a: { t: [0, 1] } }, { a: { t: [0] }, b: { t: [1] } })).toStrictEqual({
      members: { a: { added: [], revoked: ['t:1'] }, b: { added: ['t:1'], revoked: [] } },
      moved: [{ partition: 't:1', from: 'a', to: 'b' }],
      appeared: [],
      disappeared: [],
      unchanged: 1,
    });
  });

  it('a null context is treated as none', () => {
    for (const strategy of Object.values(strategies)) {
      expect(strategy(['a', 'b'], ['t:0', 't:1'], null as never)).toStrictEqual(strategy(['a', 'b'], ['t:0', 't:1']));
    }
  });
});
