import fc from 'fast-check';
import type { Assignment, PartitionInput, TopicPartition } from '../src';

/** Legal topic names, chosen so that string order and topic order differ ("t" vs "t.x" vs "t0"). */
export const TOPICS = ['t', 't.x', 't0', 'orders', 'a-b', '_z'];

/** Member ids: any non-empty strings, unique. Unicode included, since sorting must not depend on locale. */
export const membersArb = (options: { minLength?: number; maxLength?: number } = {}): fc.Arbitrary<string[]> =>
  fc.uniqueArray(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }), {
    minLength: options.minLength ?? 0,
    maxLength: options.maxLength ?? 10,
  });

/** A partition set: unique (topic, partition) pairs over a few topics, as canonical ids. */
export const partitionsArb = (options: { maxLength?: number } = {}): fc.Arbitrary<string[]> =>
  fc.uniqueArray(
    fc
      .record({ topic: fc.constantFrom(...TOPICS), partition: fc.nat({ max: 30 }) })
      .map(({ topic, partition }) => `${topic}:${partition}`),
    { maxLength: options.maxLength ?? 60 },
  );

/** Deterministic shuffle (Fisher–Yates driven by a small LCG), so failures replay from fast-check's seed. */
export function shuffle<T>(items: readonly T[], seed: number): T[] {
  const result = [...items];
  let state = seed >>> 0 || 1;
  for (let i = result.length - 1; i > 0; i--) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = state % (i + 1);
    [result[i], result[j]] = [result[j], result[i]];
  }
  return result;
}

/** The same partitions, some as `{ topic, partition }` objects: inputs a strategy must treat identically. */
export function mixForms(partitions: readonly string[], seed: number): PartitionInput[] {
  return partitions.map((id, i): PartitionInput => {
    if ((seed >> (i % 16)) & 1) return id;
    const colon = id.indexOf(':');
    const tp: TopicPartition = { topic: id.slice(0, colon), partition: Number(id.slice(colon + 1)) };
    return tp;
  });
}

/** The same assignment with members, topics and numbers listed in another order. */
export function reorder(assignment: Assignment, seed: number): Assignment {
  return Object.fromEntries(
    shuffle(Object.keys(assignment), seed).map((member) => [
      member,
      Object.fromEntries(
        shuffle(Object.keys(assignment[member]), seed + 1).map((topic) => [
          topic,
          shuffle(assignment[member][topic], seed + 2),
        ]),
      ),
    ]),
  );
}

/** partition id → owner. Fails the test if any partition appears twice. */
export function ownerOf(assignment: Assignment): Map<string, string> {
  const owners = new Map<string, string>();
  for (const [member, topics] of Object.entries(assignment)) {
    for (const [topic, numbers] of Object.entries(topics)) {
      for (const number of numbers) {
        const id = `${topic}:${number}`;
        if (owners.has(id)) throw new Error(`${id} assigned twice`);
        owners.set(id, member);
      }
    }
  }
  return owners;
}

/** How many partitions `member` holds (0 when absent). */
export function countOf(assignment: Assignment, member: string): number {
  return Object.values(assignment[member] ?? {}).reduce((sum, numbers) => sum + numbers.length, 0);
}

/** How many of `topic`'s partitions `member` holds. */
export function topicCountOf(assignment: Assignment, member: string, topic: string): number {
  return assignment[member]?.[topic]?.length ?? 0;
}

/** Partitions present in both assignments whose owner differs, counted independently of `diff`. */
export function movedBetween(before: Assignment, after: Assignment): number {
  const was = ownerOf(before);
  let moved = 0;
  for (const [id, owner] of ownerOf(after)) if (was.has(id) && was.get(id) !== owner) moved++;
  return moved;
}

/** Spread (max − min) of a list of counts. */
export function spread(counts: number[]): number {
  return counts.length === 0 ? 0 : Math.max(...counts) - Math.min(...counts);
}
