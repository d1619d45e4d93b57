// The soak's checker on made-up runs: it passes a clean one and names each broken promise in a bad one (a lost
// message, two members on one partition at once, a duplicate nothing explains, a group that does not converge in
// time), and puts an allowed duplicate down to the fault that caused it.
import {
  checkRecord,
  formatTable,
  type MemberLine,
  percentile,
  type RunEvent,
  type RunSettings,
  timelineSvg,
} from '@kiel/test-kit';

const T0 = 1_800_000_000_000;
const topic = 't';
const settings: RunSettings = {
  backend: 'zk',
  seed: 1,
  minutes: 1,
  sessionTimeout: 6_000,
  topic,
  group: 'g',
  partitions: 2,
  members: ['m1', 'm2'],
  stack: 'single',
  startedAt: T0,
};

/** A little run: two members, two partitions of 10 messages each; `edit` changes it before the check. */
function run(edit: (r: { events: RunEvent[]; lines: Map<string, MemberLine[]> }) => void = () => undefined) {
  const events: RunEvent[] = [
    { type: 'spawn', at: T0, member: 'm1', incarnation: 'm1.1', pid: 1, handler: 'async' },
    { type: 'spawn', at: T0, member: 'm2', incarnation: 'm2.1', pid: 2, handler: 'cpu' },
  ];
  const line = (at: number, kind: string, ...rest: Array<string | number>): MemberLine => ({
    at,
    kind,
    rest: rest.map(String),
  });
  const handled = (partition: number, from: number, to: number, at: number) =>
    line(at, 'HANDLED', partition, at, at + 5, Array.from({ length: to - from + 1 }, (_, i) => from + i).join(','));
  const lines = new Map<string, MemberLine[]>([
    [
      'm1.1',
      [
        line(T0 + 100, 'ASSIGNED', 1, `${topic}:0`, T0 + 100),
        handled(0, 0, 9, T0 + 200),
        line(T0 + 300, 'COMMITTED', 0, 10, T0 + 300),
      ],
    ],
    [
      'm2.1',
      [
        line(T0 + 100, 'ASSIGNED', 1, `${topic}:1`, T0 + 100),
        handled(1, 0, 9, T0 + 200),
        line(T0 + 300, 'COMMITTED', 1, 10, T0 + 300),
      ],
    ],
  ]);
  const r = { events, lines };
  edit(r);
  r.events.push({ type: 'final', at: T0 + 50_000, endOffsets: [10, 10] });
  r.events.push({ type: 'produced', at: T0 + 50_000, perPartition: [10, 10] });
  return checkRecord(settings, r.events, r.lines);
}

describe('the soak checker', () => {
  it('passes a run where every message was handled once and the group converged', () => {
    const result = run((r) =>
      r.events.push({
        type: 'fault',
        id: 1,
        kind: 'store-freeze',
        target: 'zk',
        start: T0 + 1_000,
        end: T0 + 2_000,
        detail: 'SIGSTOP zk',
      }),
    );
    expect(result.failures).toEqual([]);
    expect(result.handled).toBe(20);
    expect(result.faults.map((f) => f.convergedAfterMs)).toEqual([0]);
    expect(formatTable(result)).toContain('verdict: PASS');
    expect(timelineSvg(result)).toMatch(/^<svg [^]*<\/svg>\n$/);
  });

  it('fails on a message nobody handled', () => {
    const result = run((r) => r.lines.get('m2.1')!.splice(1, 1));
    expect(result.failures.join('\n')).toMatch(
      /lost messages: partition 1 offsets 0\.\.9 \(10 messages\) never handled/,
    );
  });

  it('fails on two members handling one partition at overlapping times', () => {
    const result = run((r) =>
      r.lines
        .get('m2.1')!
        .push({ at: T0 + 202, kind: 'HANDLED', rest: ['0', String(T0 + 202), String(T0 + 204), '9'] }),
    );
    expect(result.overlaps).toHaveLength(1);
    expect(result.failures.join('\n')).toMatch(/two members on one partition at once: overlap on partition 0/);
  });

  it('leaves out a call that began between SIGSTOP being sent and the process stopping, when it spans the stop', () => {
    // Found in a 30-minute soak: the member began a batch 2 ms after the soak sent SIGSTOP (the signal is not
    // instant), was stopped inside it, and finished it after SIGCONT: the one call a frozen process cannot leave.
    const stopped = (callEnd: number) =>
      run((r) => {
        r.events.push(
          { type: 'signal', at: T0 + 199, incarnation: 'm1.1', signal: 'SIGSTOP' },
          { type: 'signal', at: T0 + 5_000, incarnation: 'm1.1', signal: 'SIGCONT' },
        );
        const m1 = r.lines.get('m1.1')!;
        m1[1] = { at: callEnd, kind: 'HANDLED', rest: ['0', String(T0 + 201), String(callEnd), '0,1,2,3,4,5,6,7,8,9'] };
        r.lines
          .get('m2.1')!
          .push({ at: T0 + 3_002, kind: 'HANDLED', rest: ['0', String(T0 + 3_000), String(T0 + 3_002), '9'] });
      });
    // Ended after SIGCONT: it was running when the process stopped.
    expect(stopped(T0 + 5_100).overlaps).toEqual([]);
    // Ended before SIGCONT: it ran whole before the stop took hold, so it overlaps m2's call like any other.
    const before = stopped(T0 + 3_001);
    expect(before.overlaps).toHaveLength(1);
    expect(before.failures.join('\n')).toMatch(/two members on one partition at once: overlap on partition 0/);
  });

  it('puts a duplicate after a SIGKILL down to that fault, and fails on one that nothing explains', () => {
    // m1 handles 10..14 of partition 0, commits nothing more, and is killed; m1.2 handles 10..14 again: allowed.
    const killed = run((r) => {
      r.lines
        .get('m1.1')!
        .push({ at: T0 + 400, kind: 'HANDLED', rest: ['0', String(T0 + 400), String(T0 + 405), '10,11'] });
      r.events.push(
        { type: 'signal', at: T0 + 500, incarnation: 'm1.1', signal: 'SIGKILL' },
        { type: 'exit', at: T0 + 510, incarnation: 'm1.1', code: null, signal: 'SIGKILL', expected: true },
        { type: 'spawn', at: T0 + 600, member: 'm1', incarnation: 'm1.2', pid: 3, handler: 'async' },
        {
          type: 'fault',
          id: 1,
          kind: 'kill-restart',
          target: 'm1',
          start: T0 + 500,
          end: T0 + 600,
          detail: 'SIGKILL m1.1',
          killed: ['m1.1'],
        },
      );
      r.lines.set('m1.2', [
        { at: T0 + 700, kind: 'ASSIGNED', rest: ['2', `${topic}:0`, String(T0 + 700)] },
        { at: T0 + 800, kind: 'HANDLED', rest: ['0', String(T0 + 800), String(T0 + 805), '10,11'] },
      ]);
    });
    expect(killed.duplicates.map((d) => d.cause)).toEqual(['crash: #1 kill-restart', 'crash: #1 kill-restart']);
    expect(killed.failures.filter((f) => /duplicates/.test(f))).toEqual([]);

    // The same, but m1.1 had committed 12 (past both) before it was killed: nothing explains handling them again.
    const committed = run((r) => {
      r.lines
        .get('m1.1')!
        .push(
          { at: T0 + 400, kind: 'HANDLED', rest: ['0', String(T0 + 400), String(T0 + 405), '10,11'] },
          { at: T0 + 450, kind: 'COMMITTED', rest: ['0', '12', String(T0 + 450)] },
        );
      r.events.push(
        { type: 'exit', at: T0 + 510, incarnation: 'm1.1', code: null, signal: 'SIGKILL', expected: true },
        { type: 'spawn', at: T0 + 600, member: 'm1', incarnation: 'm1.2', pid: 3, handler: 'async' },
      );
      r.lines.set('m1.2', [
        { at: T0 + 700, kind: 'ASSIGNED', rest: ['2', `${topic}:0`, String(T0 + 700)] },
        { at: T0 + 800, kind: 'HANDLED', rest: ['0', String(T0 + 800), String(T0 + 805), '10,11'] },
      ]);
    });
    expect(committed.duplicates.map((d) => d.cause)).toEqual([undefined, undefined]);
    expect(committed.failures.join('\n')).toMatch(/2 duplicates neither a crash nor a lost session explains/);
  });

  it('fails a fault after which the group does not converge within session + 5 s', () => {
    // m2 loses its session right after the fault and never rejoins.
    const result = run((r) => {
      r.events.push({
        type: 'fault',
        id: 1,
        kind: 'member-cut-off',
        target: 'm2',
        start: T0 + 1_000,
        end: T0 + 9_000,
        detail: 'm2 cut off',
      });
      r.lines.get('m2.1')!.push({ at: T0 + 9_100, kind: 'EVENT', rest: ['lost', String(T0 + 9_100)] });
    });
    expect(result.faults[0]!.convergedAfterMs).toBeUndefined();
    expect(result.failures.join('\n')).toMatch(
      /#1 member-cut-off \(m2 cut off\): the group did not converge within 11 s .*m2\.1 lost its session and has not rejoined/,
    );
  });

  it('percentiles by nearest rank', () => {
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
    expect(percentile([5, 1, 4, 2, 3], 99)).toBe(5);
    expect(percentile([], 50)).toBeUndefined();
  });
});
