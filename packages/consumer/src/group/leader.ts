/**
 * The leader's part of the protocol that is pure computation: from the group's members, partitions and previous
 * allocation, run the strategy, validate what it returned, hold back moves beyond `maxMovesPerRebalance`, keep handed
 * off partitions away from the member that gave them up, and make the record of the next generation. Deciding when,
 * and publishing it (compare-and-set), is the publishing loop's (`leader-loop.ts`).
 */
import { validate, type Assignment, type Strategy } from '@kiel/allocators';
import { KielError } from '../errors';
import { parsePartitionId, partitionId } from '../partition-id';
import { compareStrings, type AllocationRecord, type ControlRecord } from './records';

/** What the leader computes the next allocation from. */
export interface AllocationInput {
  readonly strategy: Strategy;
  /** For the record and for error messages. */
  readonly strategyName: string;
  /** The leader's member id. */
  readonly leader: string;
  /** The generation of the record to make. */
  readonly generation: number;
  /** Every member the allocation is for: the live ones and those waited for (`rebalanceDelay`), sorted. */
  readonly memberIds: readonly string[];
  /** The live members, sorted. */
  readonly liveIds: readonly string[];
  /** Every partition id of the group, sorted. */
  readonly partitions: readonly string[];
  /** The allocation in force, if any: the strategy's `previous`, and what throttled moves start from. */
  readonly previous: AllocationRecord | undefined;
  /** Member id → weight, for weighted strategies. */
  readonly weights: Readonly<Record<string, number>>;
  /** Named members waited for → wall-clock deadline. */
  readonly waiting: Readonly<Record<string, number>>;
  /** Ids known to be named (`instanceId`). */
  readonly named: ReadonlySet<string>;
  readonly maxMovesPerRebalance: number | undefined;
  readonly givenUp: ControlRecord['givenUp'];
  /** Wall clock, ms. */
  readonly now: number;
}

/**
 * The record of the next generation, and how many moves it holds back (`throttled`). Throws `ERR_INVALID_ALLOCATION`
 * when the strategy throws or returns an allocation that does not give every partition to exactly one of the members;
 * the previous allocation then stays in force.
 */
export function computeAllocation(input: AllocationInput): { record: AllocationRecord; throttled: number } {
  const { strategyName, memberIds, liveIds, partitions, previous, waiting } = input;
  let assignment: Assignment;
  try {
    assignment = input.strategy(memberIds, partitions, {
      // A copy: the published record is shared (frozen) and a strategy may change what it is given.
      ...(previous ? { previous: structuredClone(previous.assignment) } : {}),
      weights: { ...input.weights },
    });
  } catch (err) {
    throw new KielError(
      'ERR_INVALID_ALLOCATION',
      `strategy ${strategyName} threw: ${(err as Error)?.message ?? err}; the previous allocation stays in force`,
      { cause: err },
    );
  }
  const problems = validate(assignment, memberIds, partitions);
  if (problems.length > 0) {
    const listed = problems
      .slice(0, 5)
      .map((p) => p.message)
      .join('; ');
    const more = problems.length > 5 ? `; and ${problems.length - 5} more` : '';
    throw new KielError(
      'ERR_INVALID_ALLOCATION',
      `strategy ${strategyName} returned an invalid assignment (${listed}${more}); the previous allocation stays in force`,
    );
  }
  let throttled = 0;
  if (input.maxMovesPerRebalance !== undefined && previous) {
    ({ assignment, throttled } = throttleMoves(
      previous.assignment,
      assignment,
      new Set(liveIds),
      input.maxMovesPerRebalance,
    ));
  }
  // A stalled partition handed off goes to another live member for a while, whatever the strategy (or the
  // throttle) says: one such move per handoff, never held back.
  assignment = keepAwayFromGivenUp(assignment, input.givenUp, liveIds, input.now);
  const namedIds = memberIds.filter((id) => input.named.has(id));
  const record: AllocationRecord = {
    generation: input.generation,
    leader: input.leader,
    strategy: strategyName,
    members: [...memberIds],
    partitions: [...partitions],
    assignment,
    ...(Object.keys(waiting).length > 0 ? { waiting: { ...waiting } } : {}),
    ...(namedIds.length > 0 ? { named: namedIds } : {}),
    ...(throttled > 0 ? { throttled } : {}),
  };
  return { record, throttled };
}

/**
 * Keeps at most `max` of the moves from `previous` to `next`: partitions whose previous owner is live and differs
 * from the next one. The others stay with their previous owner for now. Partitions without a live previous owner
 * (new ones, those of members gone) are placed freely and never count: nobody hands them off, and holding them back
 * would leave them idle. The moves kept are taken in turn from each gaining member (sorted), so that every newcomer
 * starts at once. Returns how many moves were held back.
 */
export function throttleMoves(
  previous: Assignment,
  next: Assignment,
  live: ReadonlySet<string>,
  max: number,
): { assignment: Assignment; throttled: number } {
  const previousOwner = new Map<string, string>();
  for (const [member, topics] of Object.entries(previous)) {
    for (const [topic, ids] of Object.entries(topics))
      for (const p of ids) previousOwner.set(partitionId(topic, p), member);
  }
  const owner = new Map<string, string>();
  const byGainer = new Map<string, string[]>();
  for (const [member, topics] of Object.entries(next)) {
    for (const [topic, ids] of Object.entries(topics)) {
      for (const p of ids) {
        const id = partitionId(topic, p);
        owner.set(id, member);
        const before = previousOwner.get(id);
        if (before !== undefined && before !== member && live.has(before)) {
          const list = byGainer.get(member) ?? [];
          list.push(id);
          byGainer.set(member, list);
        }
      }
    }
  }
  const total = [...byGainer.values()].reduce((n, l) => n + l.length, 0);
  if (total <= max) return { assignment: next, throttled: 0 };
  const gainers = [...byGainer.keys()].sort(compareStrings);
  for (const g of gainers) byGainer.get(g)!.sort(compareStrings);
  const kept = new Set<string>();
  for (let round = 0; kept.size < max; round++) {
    for (const g of gainers) {
      const id = byGainer.get(g)![round];
      if (id !== undefined && kept.size < max) kept.add(id);
    }
  }
  for (const list of byGainer.values()) for (const id of list) if (!kept.has(id)) owner.set(id, previousOwner.get(id)!);
  const assignment: Record<string, Record<string, number[]>> = {};
  for (const member of Object.keys(next)) assignment[member] = {};
  for (const [id, member] of owner) {
    const { topic, partition } = parsePartitionId(id);
    ((assignment[member] ??= {})[topic] ??= []).push(partition);
  }
  for (const topics of Object.values(assignment)) for (const ids of Object.values(topics)) ids.sort((x, y) => x - y);
  return { assignment, throttled: total - kept.size };
}

/**
 * Moves each partition that a live member gave up (a stalled handler handed off, `stallAction: 'handoff'`) away from
 * that member while its `until` (wall clock) lies ahead: to the live member with the fewest partitions (then the
 * lowest id) among the others. Deterministic; with no other live member the partition stays (nobody else can take
 * it, and its member keeps away from it by itself). Returns the assignment unchanged when nothing applies.
 */
export function keepAwayFromGivenUp(
  assignment: Assignment,
  givenUp: Readonly<Record<string, { readonly member: string; readonly until: number }>> | undefined,
  live: readonly string[],
  now: number,
): Assignment {
  if (givenUp === undefined) return assignment;
  const active = Object.entries(givenUp)
    .filter(([, g]) => g.until > now)
    .sort(([a], [b]) => compareStrings(a, b));
  if (active.length === 0) return assignment;
  const owner = new Map<string, string>();
  const counts = new Map<string, number>(live.map((m) => [m, 0]));
  for (const [member, topics] of Object.entries(assignment)) {
    for (const [topic, ids] of Object.entries(topics)) {
      for (const p of ids) {
        owner.set(partitionId(topic, p), member);
        counts.set(member, (counts.get(member) ?? 0) + 1);
      }
    }
  }
  let changed = false;
  for (const [id, { member }] of active) {
    if (owner.get(id) !== member) continue;
    const others = live.filter((m) => m !== member).sort(compareStrings);
    if (others.length === 0) continue;
    let best = others[0]!;
    for (const m of others) if ((counts.get(m) ?? 0) < (counts.get(best) ?? 0)) best = m;
    owner.set(id, best);
    counts.set(member, counts.get(member)! - 1);
    counts.set(best, (counts.get(best) ?? 0) + 1);
    changed = true;
  }
  if (!changed) return assignment;
  const result: Record<string, Record<string, number[]>> = {};
  for (const member of Object.keys(assignment)) result[member] = {};
  for (const [id, member] of owner) {
    const { topic, partition } = parsePartitionId(id);
    ((result[member] ??= {})[topic] ??= []).push(partition);
  }
  for (const topics of Object.values(result)) for (const ids of Object.values(topics)) ids.sort((x, y) => x - y);
  return result;
}
