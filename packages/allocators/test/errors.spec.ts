import { AllocationError, createRendezvous, formatPartitionId, parsePartitionId, strategies } from '../src';
import type { AllocationErrorCode, Strategy } from '../src';

const ALL = Object.entries(strategies) as Array<[string, Strategy]>;

/** Runs `action` and returns what it threw, failing the test if it threw nothing or not an AllocationError. */
function caught(action: () => unknown): AllocationError {
  try {
    action();
  } catch (err) {
    expect(err).toBeInstanceOf(AllocationError);
    return err as AllocationError;
  }
  throw new Error('expected an AllocationError');
}

function expectCode(error: AllocationError, code: AllocationErrorCode): void {
  expect(error.code).toBe(code);
  expect(error.retriable).toBe(false);
  expect(error.name).toBe('AllocationError');
  expect(error.message.length).toBeGreaterThan(10);
}

const MALFORMED: unknown[] = [
  't',
  't:',
  ':1',
  't:-1',
  't:01',
  't:+1',
  't:1.5',
  't:1e3',
  't: 1',
  't:2147483648',
  'a:b:1',
  'bad topic:1',
  '.:1',
  '..:1',
  `${'x'.repeat(250)}:0`,
  { topic: 't', partition: -1 },
  { topic: 't', partition: 1.5 },
  { topic: 't', partition: NaN },
  { topic: 't', partition: '1' },
  { topic: '', partition: 1 },
  { partition: 1 },
  42,
  null,
];

describe.each(ALL)('%s rejects bad input with a typed error naming the item', (_name, strategy) => {
  it('duplicate member ids', () => {
    const error = caught(() => strategy(['a', 'b', 'a'], ['t:0']));
    expectCode(error, 'ERR_DUPLICATE_MEMBER');
    expect(error.member).toBe('a');
  });

  it.each([[''], [7], [null]])('member id %p', (member) => {
    const error = caught(() => strategy(['a', member as string], ['t:0']));
    expectCode(error, 'ERR_INVALID_MEMBER');
    expect(error.item).toBe(member);
  });

  it.each(MALFORMED.map((item) => [item]))('partition %p', (item) => {
    const error = caught(() => strategy(['a'], ['t:0', item as string]));
    expectCode(error, 'ERR_INVALID_PARTITION_ID');
    expect(error.item).toBe(item);
    expect(typeof error.partition).toBe('string');
  });

  it('the same partition twice, in either form', () => {
    const error = caught(() => strategy(['a'], ['t:1', 'u:0', { topic: 't', partition: 1 }]));
    expectCode(error, 'ERR_DUPLICATE_PARTITION');
    expect(error.partition).toBe('t:1');
  });
});

describe('weights', () => {
  it.each([[0], [-1], [NaN], [Infinity], [-Infinity], ['2'], [null]])(
    'weight %p is rejected, naming the member',
    (w) => {
      const error = caught(() => strategies.weighted(['a', 'b'], ['t:0'], { weights: { a: 1, b: w as number } }));
      expectCode(error, 'ERR_INVALID_WEIGHT');
      expect(error.member).toBe('b');
      expect(error.item).toBe(w);
    },
  );

  it('a missing weight counts as 1', () => {
    const partitions = Array.from({ length: 9 }, (_, i) => `t:${i}`);
    const assignment = strategies.weighted(['a', 'b', 'c'], partitions, { weights: { a: 1, c: 1 } });
    expect(Object.values(assignment).map((topics) => topics.t.length)).toStrictEqual([3, 3, 3]);
  });

  it('shares follow weights', () => {
    const partitions = Array.from({ length: 12 }, (_, i) => `t:${i}`);
    const assignment = strategies.weighted(['a', 'b'], partitions, { weights: { a: 3, b: 1 } });
    expect(assignment.a.t).toHaveLength(9);
    expect(assignment.b.t).toHaveLength(3);
  });
});

describe('previous assignment', () => {
  it.each([['a string'], [[1, 2]], [{ a: [0] }], [{ a: { t: 0 } }]])(
    'malformed previous %p is rejected',
    (previous) => {
      const error = caught(() => strategies.sticky(['a'], ['t:0'], { previous: previous as never }));
      expectCode(error, 'ERR_INVALID_ASSIGNMENT');
    },
  );

  it('entries for departed members, unknown partitions and bad numbers are ignored', () => {
    const previous = { gone: { t: [0] }, a: { t: [1, -5, 1.5], nope: [0] }, b: { t: [2, 99] } };
    expect(strategies.sticky(['a', 'b'], ['t:0', 't:1', 't:2'], { previous })).toStrictEqual({
      a: { t: [0, 1] },
      b: { t: [2] },
    });
  });
});

describe('createRendezvous options', () => {
  it.each([[0.5], [0], [NaN], [Infinity], ['2']])('loadFactor %p is rejected', (loadFactor) => {
    const error = caught(() => createRendezvous({ loadFactor: loadFactor as number }));
    expectCode(error, 'ERR_INVALID_OPTION');
    expect(error.item).toBe(loadFactor);
  });
});

describe('zero members', () => {
  it.each(ALL)('%s returns an empty assignment', (_name, strategy) => {
    expect(strategy([], ['t:0', 't:1'])).toStrictEqual({});
  });
});

describe('ids that are also Object.prototype names', () => {
  it.each(ALL)('%s keeps __proto__ and constructor as data', (_name, strategy) => {
    const assignment = strategy(['__proto__', 'constructor'], ['__proto__:0', '__proto__:1']);
    expect(Object.getPrototypeOf(assignment)).toBe(Object.prototype);
    expect(Object.keys(assignment).sort()).toStrictEqual(['__proto__', 'constructor'].filter((m) => m in assignment));
    const owned = Object.keys(assignment).flatMap((m) => assignment[m]['__proto__']);
    expect(owned.sort()).toStrictEqual([0, 1]);
    // (Jest's deep equality treats an own "__proto__" key specially, so compare the JSON text.)
    const json = JSON.stringify(assignment);
    expect(json).toContain('"__proto__":{"__proto__":');
    expect(JSON.stringify(JSON.parse(json))).toBe(json);
  });
});

describe('parsePartitionId / formatPartitionId', () => {
  it('parse', () => {
    expect(parsePartitionId('orders.v2:7')).toStrictEqual({ topic: 'orders.v2', partition: 7 });
    expect(parsePartitionId('t:2147483647')).toStrictEqual({ topic: 't', partition: 2147483647 });
  });

  it('format', () => {
    expect(formatPartitionId({ topic: 'orders', partition: 0 })).toBe('orders:0');
    expect(formatPartitionId('orders:3')).toBe('orders:3');
  });

  it.each(MALFORMED.map((item) => [item]))('%p is rejected by both', (item) => {
    if (typeof item === 'string')
      expectCode(
        caught(() => parsePartitionId(item)),
        'ERR_INVALID_PARTITION_ID',
      );
    expectCode(
      caught(() => formatPartitionId(item as string)),
      'ERR_INVALID_PARTITION_ID',
    );
  });
});
