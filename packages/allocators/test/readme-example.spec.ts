import { diff, formatPartitionId, parsePartitionId, sticky, validate } from '../src';
import type { Assignment, Strategy } from '../src';
import { shuffle } from './helpers';

// The custom strategy from README.md, verbatim: it must keep working as documented.
const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export const wholeTopics: Strategy = (members, partitions) => {
  const sorted = [...members].sort(byCodeUnit);
  if (sorted.length === 0) return {};
  const byTopic = new Map<string, number[]>();
  for (const input of partitions) {
    const { topic, partition } = parsePartitionId(formatPartitionId(input)); // checks the id either way
    const list = byTopic.get(topic) ?? [];
    byTopic.set(topic, list);
    list.push(partition);
  }
  const assignment: Assignment = {};
  [...byTopic.keys()].sort(byCodeUnit).forEach((topic, i) => {
    const member = sorted[i % sorted.length];
    assignment[member] = { ...assignment[member], [topic]: (byTopic.get(topic) ?? []).sort((a, b) => a - b) };
  });
  return assignment;
};

describe('README custom strategy', () => {
  it('validates and keeps topics whole', () => {
    const assignment = wholeTopics(['b', 'a'], ['x:1', 'x:0', 'y:0']);
    expect(validate(assignment, ['a', 'b'], ['x:0', 'x:1', 'y:0'])).toStrictEqual([]);
    expect(assignment).toStrictEqual({ a: { x: [0, 1] }, b: { y: [0] } });
  });

  it('gives the same answer for any input order', () => {
    const members = ['m1', 'm2', 'm3'];
    const partitions = ['a:0', 'a:1', 'b:0', 'c:3', 'c:1', 'd:0'];
    const expected = wholeTopics(members, partitions);
    for (const seed of [3, 5, 8]) {
      expect(wholeTopics(shuffle(members, seed), shuffle(partitions, seed + 1))).toStrictEqual(expected);
    }
  });
});

describe('README first example', () => {
  it('moves one partition to the newcomer and nothing else', () => {
    const members = ['host-a:101:7f3e', 'host-b:202:91c0'];
    const partitions = ['orders:0', 'orders:1', 'orders:2', { topic: 'payments', partition: 0 }];
    const first = sticky(members, partitions);
    expect(first).toStrictEqual({
      'host-a:101:7f3e': { orders: [0, 2] },
      'host-b:202:91c0': { orders: [1], payments: [0] },
    });
    const grown = [...members, 'host-c:303:0b5d'];
    const next = sticky(grown, partitions, { previous: first });
    expect(validate(next, grown, partitions)).toStrictEqual([]);
    const { moved } = diff(first, next);
    expect(moved).toHaveLength(1);
    expect(moved[0].to).toBe('host-c:303:0b5d');
  });
});
