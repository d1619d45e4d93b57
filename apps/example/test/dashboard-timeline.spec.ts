/** The dashboard's rebalance timeline: pure bookkeeping over allocations, departures and claims. */
import type { AllocationRecord } from '@kiel/consumer';
import { judgeDeparture, RebalanceTimeline } from '../src/dashboard/timeline';

const record = (generation: number, assignment: Record<string, number[]>, partitions = 4): AllocationRecord => ({
  generation,
  leader: Object.keys(assignment).sort()[0]!,
  strategy: 'naive',
  members: Object.keys(assignment).sort(),
  partitions: Array.from({ length: partitions }, (_, i) => `t:${i}`),
  assignment: Object.fromEntries(Object.entries(assignment).map(([m, ps]) => [m, { t: ps }])),
});
const holders = (assignment: Record<string, number[]>) =>
  new Map(Object.entries(assignment).flatMap(([m, ps]) => ps.map((p) => [`t:${p}`, m] as const)));

describe('RebalanceTimeline', () => {
  it('names joins, leaves and expiries, counts moved partitions and times each handoff', () => {
    const t = new RebalanceTimeline();
    t.allocation(record(1, { a: [0, 1, 2, 3] }), 1_000);
    t.observeClaims(holders({ a: [0, 1, 2, 3] }), 1_010);
    expect(t.entries[0]).toEqual(
      expect.objectContaining({ generation: 1, cause: 'before the dashboard started', moved: null, handoffMs: null }),
    );

    t.allocation(record(2, { a: [0, 1], b: [2, 3] }), 2_000);
    expect(t.entries[1]).toEqual(expect.objectContaining({ cause: 'joined b', moved: 2, handoffMs: null }));
    t.observeClaims(holders({ a: [0, 1], b: [2] }), 2_050);
    expect(t.entries[1]!.handoffMs).toBeNull();
    t.observeClaims(holders({ a: [0, 1], b: [2, 3] }), 2_120);
    expect(t.entries[1]!.handoffMs).toBe(120);

    // b's departure is judged after the leader published without it: the entry is corrected.
    t.allocation(record(3, { a: [0, 1, 2, 3] }), 3_000);
    expect(t.entries[2]!.cause).toBe('left b');
    t.memberGone('b', 'expired');
    expect(t.entries[2]).toEqual(expect.objectContaining({ cause: 'expired b', expired: ['b'], left: [], moved: 2 }));

    // A generation replaced before its handoff finished is marked superseded, never timed.
    t.allocation(record(4, { a: [0, 1], c: [2, 3] }), 4_000);
    t.allocation(record(5, { a: [0, 1], c: [2], d: [3] }), 4_100);
    expect(t.entries[3]).toEqual(expect.objectContaining({ superseded: true, handoffMs: null }));
    expect(t.entries[4]!.cause).toBe('joined d');
    // An older generation read late changes nothing.
    t.allocation(record(4, { a: [0, 1], c: [2, 3] }), 4_200);
    expect(t.entries).toHaveLength(5);
  });

  it('says when the partition set changed with no member change', () => {
    const t = new RebalanceTimeline();
    t.allocation(record(1, { a: [0, 1] }, 2), 0);
    t.allocation(record(2, { a: [0, 1, 2] }, 3), 10);
    expect(t.entries[1]!.cause).toBe('partitions changed');
  });
});

describe('judgeDeparture', () => {
  const base = { claimsStillHeld: 0, lastCommitBeforeGoneMs: null, committedAfterGone: false, aliveWithinMs: 2_000 };
  it.each([
    ['a leave notice in the control record, though it went idle and fast', { noticed: true }, 'left'],
    ['claims outlived the entry', { claimsStillHeld: 2 }, 'left'],
    ['a commit after the entry went', { committedAfterGone: true }, 'left'],
    ['a commit just before', { lastCommitBeforeGoneMs: 300 }, 'left'],
    ['silent for a session timeout, claims gone with it', { lastCommitBeforeGoneMs: 3_500 }, 'expired'],
    ['never seen committing, claims gone with it', {}, 'expired'],
  ])('%s', (_what, evidence, expected) => {
    expect(judgeDeparture({ ...base, ...evidence })).toBe(expected);
  });
});
