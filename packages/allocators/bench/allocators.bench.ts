/**
 * `npm run bench -w @kiel/allocators`: every strategy at 1,000 members × 100,000 partitions (10 topics).
 *
 * For each: the median time to compute a rebalance, and the partitions moved when one member leaves and when one
 * joins, next to the minimum possible (a leave must move at least the leaver's partitions; a join at least the
 * newcomer's share). The peer, measured in the same run, is kafkajs's RoundRobinAssigner fed the same members and
 * partitions through a stub cluster (its time includes encoding each MemberAssignment, which is part of its job).
 *
 * Options (environment): BENCH_RUNS (timed runs per strategy, default 11), BENCH_MEMBERS, BENCH_TOPICS,
 * BENCH_PARTITIONS_PER_TOPIC.
 */
import * as os from 'node:os';
import { AssignerProtocol, PartitionAssigners } from 'kafkajs';
import type { Cluster } from 'kafkajs';
import { createRendezvous, diff, strategies } from '../src';
import type { Assignment, Strategy, StrategyContext } from '../src';

const RUNS = Number(process.env.BENCH_RUNS ?? 11);
const MEMBERS = Number(process.env.BENCH_MEMBERS ?? 1000);
const TOPICS = Number(process.env.BENCH_TOPICS ?? 10);
const PER_TOPIC = Number(process.env.BENCH_PARTITIONS_PER_TOPIC ?? 10000);
/** How many different members leave (and join), one at a time; the table shows the median. */
const CHANGES = 5;

const hex = (i: number, salt: number): string => (Math.imul(i + 1, 0x9e3779b1) ^ salt).toString(16).padStart(8, '0');
const members = Array.from({ length: MEMBERS }, (_, i) => `host-${i % 50}:${10000 + i}:${hex(i, 0x5bd1e995)}`);
const partitions: string[] = [];
for (let t = 0; t < TOPICS; t++) for (let p = 0; p < PER_TOPIC; p++) partitions.push(`events.topic-${t}:${p}`);
const P = partitions.length;
/** Capacities 1–4 for `weighted`, so the proportional split does real work. */
const weights = Object.fromEntries(members.map((m, i) => [m, 1 + (i % 4)]));
const newcomers = Array.from({ length: CHANGES }, (_, i) => `joiner-${i}:1:${hex(i, 0x1234567)}`);
const leavers = Array.from({ length: CHANGES }, (_, i) => members[Math.floor(((i + 0.5) * MEMBERS) / CHANGES)]);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function count(assignment: Assignment, member: string): number {
  return Object.values(assignment[member] ?? {}).reduce((sum, numbers) => sum + numbers.length, 0);
}

/** kafkajs's round robin wrapped as a (synchronous result of an async) strategy. */
async function kafkajsRoundRobin(group: readonly string[]): Promise<Assignment> {
  const byTopic = new Map<string, Array<{ partitionId: number }>>();
  for (const id of partitions) {
    const [topic, partition] = id.split(':');
    let list = byTopic.get(topic);
    if (list === undefined) byTopic.set(topic, (list = []));
    list.push({ partitionId: Number(partition) });
  }
  // The assigner only calls findTopicPartitionMetadata; groupId and logger are unused by it.
  const cluster = { findTopicPartitionMetadata: (topic: string) => byTopic.get(topic) ?? [] } as unknown as Cluster;
  const config = { cluster } as unknown as Parameters<typeof PartitionAssigners.roundRobin>[0];
  const assigner = PartitionAssigners.roundRobin(config);
  const started = process.hrtime.bigint();
  const result = await assigner.assign({
    members: group.map((memberId) => ({ memberId, memberMetadata: Buffer.alloc(0) })),
    topics: [...byTopic.keys()],
  });
  lastPeerMs = Number(process.hrtime.bigint() - started) / 1e6;
  const assignment: Assignment = {};
  for (const { memberId, memberAssignment } of result) {
    assignment[memberId] = { ...(AssignerProtocol.MemberAssignment.decode(memberAssignment)?.assignment ?? {}) };
  }
  return assignment;
}
let lastPeerMs = 0;

interface Row {
  name: string;
  ms: number;
  leave: number;
  leaveMin: number;
  join: number;
  joinMin: number;
  balance: string;
}

function balance(assignment: Assignment, group: readonly string[]): string {
  const counts = group.map((m) => count(assignment, m));
  return `${Math.min(...counts)}–${Math.max(...counts)}`;
}

/** Minimum a join must move: what the newcomer has to receive. */
function joinMinimum(name: string, group: readonly string[], newcomer: string): number {
  if (name !== 'weighted') return Math.floor(P / group.length);
  const total = group.reduce((sum, m) => sum + (weights[m] ?? 1), 0);
  return Math.floor((P * (weights[newcomer] ?? 1)) / total);
}

/**
 * Median rebalance time per strategy (one member gone, the previous assignment given). Runs are interleaved across
 * strategies and the peer, so a burst of load on a shared machine hits all of them rather than one.
 */
async function timeAll(candidates: Array<[string, Strategy]>, bases: Assignment[]): Promise<number[][]> {
  const times: number[][] = [...candidates.map(() => []), []];
  for (let run = 0; run < RUNS; run++) {
    const rest = members.filter((m) => m !== leavers[run % CHANGES]);
    for (const [c, [, strategy]] of candidates.entries()) {
      const started = process.hrtime.bigint();
      strategy(rest, partitions, { weights, previous: bases[c] });
      times[c].push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    await kafkajsRoundRobin(rest);
    times[candidates.length].push(lastPeerMs);
  }
  return times;
}

function measure(name: string, strategy: Strategy, base: Assignment, times: number[]): Row {
  const context: StrategyContext = { weights };
  const leave: number[] = [];
  const leaveMin: number[] = [];
  const join: number[] = [];
  const joinMin: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const rest = members.filter((m) => m !== leavers[i]);
    leave.push(diff(base, strategy(rest, partitions, { ...context, previous: base })).moved.length);
    leaveMin.push(count(base, leavers[i]));
    const grown = [...members, newcomers[i]];
    join.push(diff(base, strategy(grown, partitions, { ...context, previous: base })).moved.length);
    joinMin.push(joinMinimum(name, grown, newcomers[i]));
  }
  return {
    name,
    ms: median(times),
    leave: median(leave),
    leaveMin: median(leaveMin),
    join: median(join),
    joinMin: median(joinMin),
    balance: balance(base, members),
  };
}

async function measurePeer(times: number[]): Promise<Row> {
  const base = await kafkajsRoundRobin(members);
  const leave: number[] = [];
  const leaveMin: number[] = [];
  const join: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    leave.push(diff(base, await kafkajsRoundRobin(members.filter((m) => m !== leavers[i]))).moved.length);
    leaveMin.push(count(base, leavers[i]));
    join.push(diff(base, await kafkajsRoundRobin([...members, newcomers[i]])).moved.length);
  }
  return {
    name: 'kafkajs RoundRobinAssigner (peer)',
    ms: median(times),
    leave: median(leave),
    leaveMin: median(leaveMin),
    join: median(join),
    joinMin: Math.floor(P / (MEMBERS + 1)),
    balance: balance(base, members),
  };
}

async function main(): Promise<void> {
  console.log(
    `@kiel/allocators bench: ${MEMBERS} members × ${P} partitions (${TOPICS} topics), median of ${RUNS} runs, ` +
      `moves: median of ${CHANGES} leaves / joins. Node ${process.version}, ${os.cpus().length} CPUs, load average ` +
      `${os.loadavg()[0].toFixed(1)} at start (times scale with load; the ratio to the peer much less).\n`,
  );
  const candidates: Array<[string, Strategy]> = [
    ...Object.entries(strategies),
    ['rendezvous({ loadFactor: 1.25 })', createRendezvous({ loadFactor: 1.25 })],
  ];
  const bases = candidates.map(([, strategy]) => strategy(members, partitions, { weights }));
  const times = await timeAll(candidates, bases);
  const rows = candidates.map(([name, strategy], c) => measure(name, strategy, bases[c], times[c]));
  const peer = await measurePeer(times[candidates.length]);
  const header = ['strategy', 'ms', '× peer', 'moved on leave', 'min', 'moved on join', 'min', 'counts'];
  const lines = [...rows, peer].map((r) => [
    r.name,
    r.ms.toFixed(1),
    (r.ms / peer.ms).toFixed(2),
    `${r.leave} (${(r.leave / r.leaveMin).toFixed(2)}×)`,
    String(r.leaveMin),
    `${r.join} (${(r.join / r.joinMin).toFixed(2)}×)`,
    String(r.joinMin),
    r.balance,
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c].length)));
  const format = (cells: string[]): string => `| ${cells.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`;
  console.log(format(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const line of lines) console.log(format(line));

  // The goals from the issue, checked against this run.
  const byName = new Map(rows.map((r) => [r.name, r]));
  const goals: Array<[string, boolean]> = [
    ...rows.map((r): [string, boolean] => {
      const limit = r.name === 'sticky' || r.name === 'weighted' ? 300 : 100;
      return [`${r.name} ≤ ${limit} ms`, r.ms <= limit];
    }),
    ...(['sticky'] as const).flatMap((n): Array<[string, boolean]> => {
      const r = byName.get(n) as Row;
      return [
        [`${n} leave moves ≤ 1.1× minimum`, r.leave <= 1.1 * r.leaveMin],
        [`${n} join moves ≤ 1.1× minimum`, r.join <= 1.1 * r.joinMin],
      ];
    }),
    ...['rendezvous', 'rendezvous({ loadFactor: 1.25 })'].flatMap((n): Array<[string, boolean]> => {
      const r = byName.get(n) as Row;
      return [
        [`${n} leave moves ≤ 1.2 × P/n`, r.leave <= (1.2 * P) / MEMBERS],
        [`${n} join moves ≤ 1.2 × P/n`, r.join <= (1.2 * P) / MEMBERS],
      ];
    }),
  ];
  console.log('\nGoals:');
  for (const [goal, met] of goals) console.log(`  ${met ? 'met   ' : 'MISSED'} ${goal}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
