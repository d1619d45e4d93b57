// The leader's computation of the next allocation, apart from publishing it (src/group/leader.ts).
import { naive, type Strategy } from '@kiel/allocators';
import { computeAllocation, type AllocationInput } from '../../src/group/leader';
import { isKielError } from '../../src';
import type { AllocationRecord } from '../../src/group/records';

const partitions = ['t:0', 't:1', 't:2', 't:3'];

function input(overrides: Partial<AllocationInput> = {}): AllocationInput {
  return {
    strategy: naive,
    strategyName: 'naive',
    leader: 'a',
    generation: 7,
    memberIds: ['a', 'b'],
    liveIds: ['a', 'b'],
    partitions,
    previous: undefined,
    weights: {},
    waiting: {},
    named: new Set(),
    maxMovesPerRebalance: undefined,
    givenUp: undefined,
    now: 1_000,
    ...overrides,
  };
}

function codeOf(call: () => unknown): string {
  try {
    call();
  } catch (error) {
    return isKielError(error) ? error.code : `not a KielError: ${String(error)}`;
  }
  return 'no error';
}

describe('computeAllocation', () => {
  it('makes the record of the next generation from what the strategy returns', () => {
    const { record, throttled } = computeAllocation(input({ named: new Set(['b']), waiting: { b: 5_000 } }));
    expect(throttled).toBe(0);
    expect(record).toEqual({
      generation: 7,
      leader: 'a',
      strategy: 'naive',
      members: ['a', 'b'],
      partitions,
      assignment: naive(['a', 'b'], partitions),
      waiting: { b: 5_000 },
      named: ['b'],
    });
  });

  it('refuses a strategy that throws or returns an invalid allocation with ERR_INVALID_ALLOCATION', () => {
    const throwing: Strategy = () => {
      throw new Error('boom');
    };
    const losesOne: Strategy = () => ({ a: { t: [0, 1] }, b: { t: [2] } });
    const unknownMember: Strategy = () => ({ a: { t: [0, 1] }, z: { t: [2, 3] } });
    expect(codeOf(() => computeAllocation(input({ strategy: throwing })))).toBe('ERR_INVALID_ALLOCATION');
    expect(codeOf(() => computeAllocation(input({ strategy: losesOne })))).toBe('ERR_INVALID_ALLOCATION');
    expect(codeOf(() => computeAllocation(input({ strategy: unknownMember })))).toBe('ERR_INVALID_ALLOCATION');
  });

  it('gives the strategy a copy of the previous assignment, never the published (frozen) record', () => {
    const previous: AllocationRecord = Object.freeze({
      generation: 6,
      leader: 'a',
      strategy: 'naive',
      members: ['a', 'b'],
      partitions,
      assignment: Object.freeze({ a: Object.freeze({ t: Object.freeze([0, 1]) }), b: { t: [2, 3] } }),
    }) as unknown as AllocationRecord;
    const mutating: Strategy = (members, parts, context) => {
      const before = context?.previous as Record<string, Record<string, number[]>>;
      before.a!.t!.push(99); // would throw on the frozen record
      return naive(members, parts);
    };
    expect(() => computeAllocation(input({ strategy: mutating, previous }))).not.toThrow();
    expect(previous.assignment.a).toEqual({ t: [0, 1] });
  });

  it('holds back moves beyond maxMovesPerRebalance between live members, and counts them', () => {
    const previous = computeAllocation(input({ memberIds: ['a'], liveIds: ['a'] })).record;
    const { record, throttled } = computeAllocation(input({ previous, maxMovesPerRebalance: 1 }));
    const moved = record.assignment.b?.t ?? [];
    expect(moved).toHaveLength(1);
    expect(throttled).toBe(1);
    expect(record.throttled).toBe(1);
  });
});
