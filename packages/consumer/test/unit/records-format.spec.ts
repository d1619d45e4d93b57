// The layouts of the group's records: format 1 (kiel's plain JSON) while small, format 2 (compact, deflated) beyond,
// and what a reader does with a layout it does not know. The size at 1,000 members × 100,000 partitions against the
// real servers is in the backend conformance suite (src/testing).
import { deflateRawSync } from 'node:zlib';
import { naive, rendezvous, sticky } from '@kiel/allocators';
import {
  compareStrings,
  formatAllocation,
  formatPartitionSet,
  parseAllocation,
  parsePartitionSet,
  partitionsOf,
  PLAIN_RECORD_LIMIT,
  type AllocationRecord,
} from '../../src/group/records';

const ids = (topic: string, n: number) => Array.from({ length: n }, (_, p) => `${topic}:${p}`);
const members = (n: number) => Array.from({ length: n }, (_, i) => `host-${i}:${100 + i}:m${i}`).sort(compareStrings);

function record(memberIds: string[], partitions: string[], strategy = naive): AllocationRecord {
  const sorted = [...partitions].sort(compareStrings);
  return {
    generation: 7,
    leader: memberIds[0]!,
    strategy: strategy.name,
    members: memberIds,
    partitions: sorted,
    assignment: strategy(memberIds, sorted),
  };
}

/** What each member owns, one line each: the meaning of an assignment, whatever its layout. */
const owned = (r: AllocationRecord) =>
  r.members.map((m) => `${m} ${[...partitionsOf(r.assignment, m)].sort(compareStrings).join(',')}`).join('\n');

/** The checks of the format-1 reader of kiel 0.1.0 (before format 2), to show what an older member does. */
function olderReader(text: string): void {
  const value = JSON.parse(text);
  if (!Array.isArray(value.members) || !Array.isArray(value.partitions) || typeof value.assignment !== 'object') {
    throw Object.assign(new Error('malformed record'), { code: 'ERR_MALFORMED_RECORD' });
  }
}

describe('allocation record layout', () => {
  it('stays plain JSON (format 1, readable by every version) while it is small', () => {
    const r = record(members(3), ids('orders', 12));
    const text = formatAllocation(r);
    expect(JSON.parse(text)).toEqual(r);
    expect(parseAllocation(text, 'here')).toEqual(r);
  });

  it.each([
    ['naive', naive],
    ['sticky', sticky],
    ['rendezvous', rendezvous],
  ])('%s: switches to format 2 beyond its limit, and reads back the same allocation', (_, strategy) => {
    const partitions = [...ids('orders', 3_000), ...ids('payments.v2', 1_200), ...ids('a-b', 7)];
    const r = record(members(64), partitions, strategy);
    expect(JSON.stringify(r).length).toBeGreaterThan(PLAIN_RECORD_LIMIT);
    const text = formatAllocation(r);
    expect(JSON.parse(text)).toMatchObject({ format: 2, generation: 7, leader: r.leader, strategy: strategy.name });
    expect(text.length).toBeLessThan(JSON.stringify(r).length / 4);
    const back = parseAllocation(text, 'here');
    expect(back.members).toEqual(r.members);
    expect(back.partitions).toEqual(r.partitions);
    expect(owned(back)).toBe(owned(r));
  });

  it('is parsed once per process for the members that share it, and handed out frozen', () => {
    const r = record(members(64), ids('orders', 3_000), sticky);
    const text = formatAllocation(r);
    const first = parseAllocation(text, 'a');
    // Another member of the same process reads the same text (a copy of it, as a second read from the server is).
    expect(parseAllocation((' ' + text).slice(1), 'b')).toBe(first);
    expect(Object.isFrozen(first) && Object.isFrozen(first.assignment) && Object.isFrozen(first.partitions)).toBe(true);
    const someone = first.members[0]!;
    expect(() => (first.assignment[someone]!['orders'] as number[]).push(1)).toThrow(TypeError);
    // A new generation is parsed anew; a malformed text still throws every time.
    const next = parseAllocation(formatAllocation({ ...r, generation: 8 }), 'a');
    expect(next).not.toBe(first);
    expect(next.generation).toBe(8);
    expect(owned(next)).toBe(owned(r));
    for (let i = 0; i < 2; i++) {
      expect(() => parseAllocation('{"format":2,"generation":1}', 'c')).toThrow(
        expect.objectContaining({ code: 'ERR_MALFORMED_RECORD', location: 'c' }),
      );
    }
  });

  it('an older member meeting format 2 refuses it as malformed, never misreads it', () => {
    const text = formatAllocation(record(members(64), ids('orders', 5_000)));
    expect(() => olderReader(text)).toThrow(expect.objectContaining({ code: 'ERR_MALFORMED_RECORD' }));
  });

  it('a format this version does not know is ERR_RECORD_FORMAT, naming the record', () => {
    const future = JSON.stringify({ format: 3, generation: 9, leader: 'x', strategy: 'naive', body: '' });
    expect(() => parseAllocation(future, '/kiel/groups/g/allocation')).toThrow(
      expect.objectContaining({ code: 'ERR_RECORD_FORMAT', location: '/kiel/groups/g/allocation' }),
    );
    expect(() => parsePartitionSet(JSON.stringify({ format: 'x' }), 'k')).toThrow(
      expect.objectContaining({ code: 'ERR_RECORD_FORMAT' }),
    );
  });

  it.each([
    ['a body that is not deflate', 'bm90IGRlZmxhdGU='],
    ['an owner beyond the members', body({ members: ['a'], topics: [['t', '0+1', '0,1']] })],
    ['fewer owners than partitions', body({ members: ['a'], topics: [['t', '0+2', '0*2']] })],
    ['ids that go back', body({ members: ['a'], topics: [['t', '5,0', '0*2']] })],
  ])('format 2 with %s is ERR_MALFORMED_RECORD', (_, encoded) => {
    const text = JSON.stringify({ format: 2, generation: 1, leader: 'a', strategy: 'naive', body: encoded });
    expect(() => parseAllocation(text, 'loc')).toThrow(
      expect.objectContaining({ code: 'ERR_MALFORMED_RECORD', location: 'loc' }),
    );
  });
});

function body(value: unknown): string {
  return deflateRawSync(JSON.stringify(value)).toString('base64');
}

describe('partition set layout', () => {
  it('is a plain JSON list while small, format 2 beyond, and reads back sorted either way', () => {
    const small = ids('orders', 12);
    expect(formatPartitionSet(small)).toBe(JSON.stringify([...small].sort(compareStrings)));
    const large = [...ids('orders', 6_000), ...ids('orders-dlq', 3), ...ids('payments', 1)];
    const text = formatPartitionSet(large);
    expect(JSON.parse(text)).toMatchObject({ format: 2 });
    expect(text.length).toBeLessThan(200);
    expect(parsePartitionSet(text, 'loc')).toEqual([...large].sort(compareStrings));
  });
});
