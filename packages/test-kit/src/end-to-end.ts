// The end-to-end scenario of the ZooKeeper and etcd backends, with every member in a process of its own: three
// GroupedConsumers on a 12-partition topic while 30,000 messages are produced; then one leaves gracefully (SIGTERM),
// one is killed (SIGKILL) and a new one joins, each while messages flow. The members are the backend package's
// fixture: the shared member program plus one backend line, so the scenario runs the same consumer code on both
// backends. What the children report feeds one ProcessingLog, whose wall-clock intervals show whether two processes
// ever handled one partition at the same time.
import { KAFKA_BROKERS, uniqueName } from './env';
import { ChildMember, type ChildMemberConfig } from './child-member';
import { ProcessingLog } from './group-harness';
import { sleep, waitFor } from './wait';
import { kafka, topics } from './kafka';

export type EndToEndStrategy = 'naive' | 'sticky' | 'weighted';

export interface EndToEndOptions {
  /** The backend package's `test/fixtures/group-member-process.js`. */
  readonly fixture: string;
  readonly hosts: string;
  /** A fresh ZooKeeper root path or etcd prefix. */
  readonly namespace: string;
  /** ZooKeeper session timeout / etcd lease TTL, ms. */
  readonly sessionTimeout: number;
  readonly strategy: EndToEndStrategy;
  /** A fresh topic with `partitions` partitions. */
  readonly topic: string;
  readonly partitions: number;
  readonly messages: number;
  /** Each member's handler (see member-program.js); default an async eachBatch handler of 0..2 ms. */
  readonly handlers?: Readonly<Record<string, MemberHandler>>;
}

/** How a member handles its messages. */
export type MemberHandler = Pick<ChildMemberConfig, 'handler' | 'mode' | 'handleMs'>;

/**
 * The mixed case: each member handles messages its own way. a (leaves) holds the event loop 5 ms per message, more
 * than it can keep up with, so it has a backlog of seconds when it leaves; b (killed) throws once at every 97th offset
 * and runs again; c (stays throughout) is async per batch; d (joins) holds the event loop for a whole batch, 1 ms per
 * message (a sync eachBatch handler cannot be interrupted, so its batches must stay well within a session). The
 * one-partition cases of handler-safety.ts take the long runs.
 */
export const MIXED_HANDLERS: Readonly<Record<string, MemberHandler>> = {
  a: { handler: 'cpu', mode: 'eachMessage', handleMs: 5 },
  b: { handler: 'throws', mode: 'eachMessage', handleMs: 1 },
  c: { handler: 'async', mode: 'eachBatch', handleMs: 2 },
  d: { handler: 'cpu', mode: 'eachBatch', handleMs: 1 },
};

/** Who owned how many partitions once the group settled after a step. */
export interface SettledPoint {
  readonly after: string;
  readonly generation: number;
  readonly owned: Readonly<Record<string, number>>;
  /** What the strategy should give: shares by weight for `weighted`, an even split otherwise. */
  readonly expected: Readonly<Record<string, number>>;
}

export interface EndToEndReport {
  readonly log: ProcessingLog;
  readonly produced: readonly number[];
  readonly members: ReadonlyMap<string, ChildMember>;
  readonly settled: readonly SettledPoint[];
  /** The killed member's commits as it last reported them before the kill. */
  readonly killedCommits: ReadonlyMap<number, number>;
  readonly exitCodes: Readonly<Record<string, number | null | undefined>>;
  /** Milestones in ms: SIGTERM to exit of the leaver, SIGKILL to a settled group, join to a settled group. */
  readonly timings: { readonly leaveMs: number; readonly killSettledMs: number; readonly joinSettledMs: number };
  /** How many messages had been produced when each step began (all before the last one). */
  readonly producedAt: { readonly leave: number; readonly kill: number; readonly join: number };
}

/** Members and their weights (used by `weighted` only): a leaves, b is killed, c stays, d joins. */
const WEIGHTS: Record<string, number> = { a: 1, b: 1, c: 2, d: 1 };

/** Each member's expected partition count: 12·w/Σw when weighted (whole numbers here), else an even split. */
function expectedCounts(
  names: readonly string[],
  partitions: number,
  strategy: EndToEndStrategy,
): Record<string, number> {
  const expected: Record<string, number> = {};
  if (strategy === 'weighted') {
    const total = names.reduce((sum, n) => sum + WEIGHTS[n]!, 0);
    for (const n of names) expected[n] = (partitions * WEIGHTS[n]!) / total;
  } else {
    const base = Math.floor(partitions / names.length);
    names.forEach((n, i) => (expected[n] = base + (i < partitions % names.length ? 1 : 0)));
  }
  return expected;
}

/** The member's exit code (null after a signal), or undefined if it is still running after `ms`. */
async function exitWithin(member: ChildMember, ms: number): Promise<number | null | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([member.exited, timeout]);
  } finally {
    clearTimeout(timer); // a pending timer would hold jest open after the run
  }
}

/** Runs the scenario and reports what happened; `expectEndToEnd` checks it. */
export async function runEndToEnd(options: EndToEndOptions): Promise<EndToEndReport> {
  const { partitions, messages, strategy } = options;
  const group = uniqueName('kiel-e2e');
  const log = new ProcessingLog();
  const members = new Map<string, ChildMember>();
  const live = new Set<string>();
  const settled: SettledPoint[] = [];
  const start = (name: string) => {
    const member = new ChildMember(
      name,
      options.fixture,
      {
        brokers: KAFKA_BROKERS,
        group,
        topic: options.topic,
        strategy,
        ...(strategy === 'weighted' ? { weight: WEIGHTS[name]! } : {}),
        ...(options.handlers?.[name] ?? { handleMs: 2 }),
        hosts: options.hosts,
        namespace: options.namespace,
        sessionTimeout: options.sessionTimeout,
      },
      log,
    );
    members.set(name, member);
    live.add(name);
    return member;
  };
  /** Every partition owned by exactly one live member, all on one generation, each live member owning some. */
  const isSettled = () => {
    const views = [...live].map((n) => members.get(n)!);
    for (const m of views) m.assertAlive();
    const owned = views.flatMap((m) => m.assignment);
    return (
      new Set(views.map((m) => m.generation)).size === 1 &&
      views.every((m) => m.assignment.length > 0) &&
      owned.length === partitions &&
      new Set(owned).size === partitions
    );
  };
  const settle = async (after: string) => {
    await waitFor(`the group to settle after ${after}`, isSettled, 30_000).catch((error: Error) => {
      // Say what each member last reported, so that a failure tells which one did not follow.
      const views = [...live].map((n) => {
        const m = members.get(n)!;
        return `${n} (${m.memberId}) generation ${m.generation} [${m.assignment.join(' ')}] stderr ${JSON.stringify(m.stderr)}`;
      });
      throw new Error(`${error.message}: ${views.join('; ')}`);
    });
    const names = [...live].sort();
    const owned: Record<string, number> = {};
    for (const n of names) owned[n] = members.get(n)!.assignment.length;
    settled.push({
      after,
      generation: members.get(names[0]!)!.generation,
      owned,
      expected: expectedCounts(names, partitions, strategy),
    });
  };

  // The producer: paced round-robin over the partitions, never past `allowed`, so that every step happens while
  // messages are still to come, however slow the machine.
  const produced = new Array<number>(partitions).fill(0);
  let total = 0;
  let allowed = 0;
  let stopped = false;
  const producer = kafka.producer();
  await producer.connect();
  const producing = (async () => {
    let seq = 0;
    while (total < messages && !stopped) {
      const n = Math.min(60, messages - total);
      if (total + n > allowed) {
        await sleep(10);
        continue;
      }
      const batch = Array.from({ length: n }, () => {
        const partition = seq % partitions;
        return { partition, value: String(seq++) };
      });
      await producer.send({ topic: options.topic, acks: -1, messages: batch });
      for (const m of batch) produced[m.partition]!++;
      total += n;
      await sleep(20);
    }
  })();
  const reached = (count: number) => waitFor(`${count} messages produced`, () => total >= count, 60_000);

  const quarter = messages / 4;
  const exitCodes: Record<string, number | null | undefined> = {};
  let killedCommits = new Map<number, number>();
  const timings = { leaveMs: 0, killSettledMs: 0, joinSettledMs: 0 };
  const producedAt = { leave: 0, kill: 0, join: 0 };
  try {
    for (const name of ['a', 'b', 'c']) start(name);
    await settle('three members started');
    allowed = 1.5 * quarter;

    // A graceful leave: the leaver commits what it handled and hands its partitions over.
    await reached(quarter);
    producedAt.leave = total;
    const leaver = members.get('a')!;
    let at = performance.now();
    leaver.child.kill('SIGTERM');
    exitCodes.a = await exitWithin(leaver, 15_000);
    if (exitCodes.a === undefined) throw new Error(`a did not exit within 15 s of its SIGTERM: ${leaver.stderr}`);
    timings.leaveMs = performance.now() - at;
    live.delete('a');
    await settle('a left (SIGTERM)');
    allowed = 2.5 * quarter;

    // A crash: b's partitions move once its session (lease) is over.
    await reached(2 * quarter);
    producedAt.kill = total;
    const victim = members.get('b')!;
    killedCommits = new Map(victim.commits);
    at = performance.now();
    victim.child.kill('SIGKILL');
    exitCodes.b = await victim.exited;
    live.delete('b');
    await settle('b killed (SIGKILL)');
    timings.killSettledMs = performance.now() - at;
    allowed = 3.5 * quarter;

    // A join.
    await reached(3 * quarter);
    producedAt.join = total;
    at = performance.now();
    start('d');
    await settle('d joined');
    timings.joinSettledMs = performance.now() - at;
    allowed = messages;

    await producing;
    await waitFor(`all ${messages} messages handled`, () => log.complete(produced), 60_000);
    await sleep(300); // a redelivery after the end would show as a duplicate
  } finally {
    stopped = true; // ends the producer loop if a step failed
    await producing.catch(() => undefined);
    await producer.disconnect();
    for (const name of live) members.get(name)!.child.kill('SIGTERM');
    // A graceful close gets 15 s (the check then fails on its missing exit code); no child outlives the test.
    for (const name of live) {
      exitCodes[name] = await exitWithin(members.get(name)!, 15_000);
    }
    for (const member of members.values()) {
      if (member.child.exitCode === null && member.child.signalCode === null) member.child.kill('SIGKILL');
    }
  }
  return { log, produced, members, settled, killedCommits, exitCodes, timings, producedAt };
}

/** Duplicates not explained by the crash: only what the killed member b handled after its last commit may repeat. */
export function unexplainedDuplicates(report: EndToEndReport) {
  return report.log
    .duplicates()
    .filter(
      ({ partition, offset, members }) =>
        !(members.length === 2 && members[0] === 'b' && offset >= (report.killedCommits.get(partition) ?? 0)),
    );
}

/** The scenario's checks, as jest expectations. */
export function expectEndToEnd(report: EndToEndReport, messages: number): void {
  for (const member of report.members.values()) {
    expect({ member: member.name, stderr: member.stderr, unexpected: member.unexpected }).toEqual({
      member: member.name,
      stderr: '',
      unexpected: [],
    });
  }
  // The leaver and the members still running at the end closed gracefully; b died of its SIGKILL.
  expect(report.exitCodes).toEqual({ a: 0, b: null, c: 0, d: 0 });
  expect(report.members.get('a')!.left).toBe(true);
  // Each step happened while messages were still being produced.
  expect(report.producedAt.leave).toBeLessThan(messages);
  expect(report.producedAt.kill).toBeGreaterThan(report.producedAt.leave);
  expect(report.producedAt.join).toBeGreaterThan(report.producedAt.kill);
  expect(report.producedAt.join).toBeLessThan(messages);
  expect(report.produced.reduce((a, b) => a + b, 0)).toBe(messages);
  // The strategy's shares, at every settled point.
  for (const point of report.settled)
    expect({ after: point.after, owned: point.owned }).toEqual({
      after: point.after,
      owned: point.expected,
    });
  // Every member handled messages; nothing was lost.
  for (const name of ['a', 'b', 'c', 'd']) {
    expect(report.log.intervals.some((i) => i.member === name)).toBe(true);
  }
  expect(report.log.lost(report.produced)).toEqual([]);
  // A handler that throws did throw (and what it threw on came again: nothing is lost).
  for (const member of report.members.values()) {
    if (member.config.handler === 'throws') expect(member.threw.length).toBeGreaterThan(0);
  }
  // Never two processes on one partition at the same time.
  expect(report.log.describeOverlaps()).toEqual([]);
  // Duplicates: only the killed member's uncommitted window.
  expect(unexplainedDuplicates(report)).toEqual([]);
}

/** A backend package's side of the scenario: where its server is, and its member fixture. */
export interface EndToEndBackend {
  /** For the test names and the log line, e.g. `ZooKeeperBackend`. */
  readonly name: string;
  /** The package's `test/fixtures/group-member-process.js`. */
  readonly fixture: string;
  readonly hosts: string;
  /** Session timeout / lease TTL, ms: how long the killed member's partitions wait. */
  readonly sessionTimeout: number;
  /** A fresh ZooKeeper root path or etcd prefix for one case. */
  newNamespace(): string;
  /** Deletes what the cases left under their namespaces. */
  removeNamespaces(namespaces: readonly string[]): Promise<void>;
}

/**
 * The scenario as a jest suite: one case per strategy, 3 members on 12 partitions, 30,000 messages; and one with
 * the mixed handlers (sticky, 12,000 messages).
 */
export function describeEndToEnd(backend: EndToEndBackend): void {
  const partitions = 12;
  const messages = 30_000;
  const t = topics();
  const namespaces: string[] = [];
  afterAll(async () => {
    await backend.removeNamespaces(namespaces).catch(() => undefined);
    await t.cleanup();
  }, 60_000);

  describe(`end to end with ${backend.name}: members in separate processes, real Kafka`, () => {
    it.each<EndToEndStrategy>(['naive', 'sticky', 'weighted'])(
      '%s: a leave, a SIGKILL and a join while 30,000 messages flow; nothing lost, no overlap, duplicates only from the killed member',
      async (strategy) => {
        const namespace = backend.newNamespace();
        namespaces.push(namespace);
        const report = await runEndToEnd({
          fixture: backend.fixture,
          hosts: backend.hosts,
          namespace,
          sessionTimeout: backend.sessionTimeout,
          strategy,
          topic: await t.create(`e2e-${strategy}`, partitions),
          partitions,
          messages,
        });
        process.stdout.write(`${backend.name} ${strategy}: ${summary(report)}\n`);
        expectEndToEnd(report, messages);
      },
      180_000,
    );

    it('mixed handlers (CPU-bound per message and per batch, throwing, async): a leave, a SIGKILL and a join while 12,000 messages flow; nothing lost, no overlap, duplicates only from the killed member', async () => {
      const namespace = backend.newNamespace();
      namespaces.push(namespace);
      const mixed = 12_000;
      const report = await runEndToEnd({
        fixture: backend.fixture,
        hosts: backend.hosts,
        namespace,
        sessionTimeout: backend.sessionTimeout,
        strategy: 'sticky',
        topic: await t.create('e2e-mixed', partitions),
        partitions,
        messages: mixed,
        handlers: MIXED_HANDLERS,
      });
      const threw = [...report.members.values()].map((m) => `${m.name} threw ${m.threw.length}`).join(', ');
      process.stdout.write(`${backend.name} mixed handlers: ${summary(report)}; ${threw}\n`);
      expectEndToEnd(report, mixed);
    }, 180_000);
  });
}

/** One line for the test log: timings and duplicate count. */
export function summary(report: EndToEndReport): string {
  const { leaveMs, killSettledMs, joinSettledMs } = report.timings;
  const owned = report.settled.map((p) => `${p.after}: ${JSON.stringify(p.owned)}`).join('; ');
  return (
    `handled ${report.log.count} for ${report.produced.reduce((a, b) => a + b, 0)} produced, ` +
    `${report.log.duplicates().length} duplicates (${unexplainedDuplicates(report).length} outside the killed member's window); ` +
    `leave ${Math.round(leaveMs)} ms, ` +
    `kill settled ${Math.round(killSettledMs)} ms, join settled ${Math.round(joinSettledMs)} ms; ${owned}`
  );
}
