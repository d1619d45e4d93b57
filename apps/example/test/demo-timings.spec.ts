/** The demo's rebalance table timings: a pure function of the published allocations and the workers' reports. */
import { generationTimings, type Publication, type RebalanceReport } from '../src/commands/demo';

const report = (
  worker: string,
  member: string,
  generation: number,
  at: number,
  durationMs: number,
): RebalanceReport => ({
  generation,
  worker,
  member,
  assigned: 0,
  revoked: 0,
  durationMs,
  at,
  leaving: false,
});

describe('generationTimings', () => {
  // w1 has left gracefully: generation 3 is for w2 and w3. w4 joins while the leader w2 is dead, so no new
  // generation is published until w2's session expires, and w4 applies generation 3 as its first, 7.1 s late.
  const afterLeave: Publication = { generation: 3, at: 5_000, members: ['m-w2', 'm-w3'], moved: 4 };
  const reports = [
    report('w2', 'm-w2', 3, 5_100, 80),
    report('w3', 'm-w3', 3, 5_200, 150),
    report('w4', 'm-w4', 3, 12_100, 400),
    report('w4', 'm-w4', 4, 12_900, 300),
  ];

  it("counts only the generation's members, not a later joiner that reports it as its first", () => {
    expect(generationTimings(afterLeave, reports)).toEqual({ longestHandoffMs: 150, allDoneAfterMs: 200 });
  });

  it('gives nothing when only workers outside the generation reported it', () => {
    expect(generationTimings(afterLeave, [reports[2]!])).toEqual({});
  });

  it('leaves out a member that reported the generation while leaving', () => {
    const leaving = { ...report('w3', 'm-w3', 3, 9_000, 900), leaving: true };
    expect(generationTimings(afterLeave, [reports[0]!, leaving])).toEqual({
      longestHandoffMs: 80,
      allDoneAfterMs: 100,
    });
  });
});
