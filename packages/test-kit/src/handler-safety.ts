// Safety under real handlers (issue 13), with every member in a process of its own on real Kafka and the backend
// package's server: a handler that holds the event loop, a member process stopped (SIGSTOP) past its session, and a
// partition that moves while its messages wait in the old owner's buffer. The members are the backend package's
// fixture (the shared member program plus its backend line); what they report feeds one ProcessingLog, whose
// wall-clock intervals and offsets show whether a member went on handling a partition another member had begun.
import { ChildMember, type ChildMemberConfig } from './child-member';
import type { EndToEndBackend } from './end-to-end';
import { KAFKA_BROKERS, uniqueName } from './env';
import { ProcessingLog, timeOfDay, type Interval } from './group-harness';
import { sleep, waitFor } from './wait';
import { produce, topics } from './kafka';
import { readFileSync } from 'node:fs';

/**
 * A process's state letter from /proc (`T` once stopped by a signal). Where there is no /proc, 'T': the caller then
 * takes the moment kill() returned, which may be a little before the stop took effect.
 */
function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ...": the command may hold spaces and parentheses, the state follows the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return 'T';
  }
}

/** Session timeout / lease TTL of these cases, ms. */
export const SAFETY_SESSION_TIMEOUT = 4_000;

/** Members of one case, started on one group, topic and namespace; `stopAll()` ends every one of them. */
class Members {
  readonly log = new ProcessingLog();
  readonly all = new Map<string, ChildMember>();
  readonly group = uniqueName('kiel-safety');
  /** Members stopped with SIGSTOP and not continued yet. */
  readonly stopped = new Set<string>();

  constructor(
    private readonly backend: EndToEndBackend,
    readonly namespace: string,
    readonly topic: string,
    readonly partitions: number,
  ) {}

  start(name: string, handler: Partial<ChildMemberConfig>): ChildMember {
    const member = new ChildMember(
      name,
      this.backend.fixture,
      {
        brokers: KAFKA_BROKERS,
        group: this.group,
        topic: this.topic,
        strategy: 'sticky',
        hosts: this.backend.hosts,
        namespace: this.namespace,
        sessionTimeout: SAFETY_SESSION_TIMEOUT,
        ...handler,
      },
      this.log,
    );
    this.all.set(name, member);
    return member;
  }

  get(name: string): ChildMember {
    return this.all.get(name)!;
  }

  /** Every member on one generation after `after`, which gives each partition to exactly one of them. */
  isSettled(after = -1): boolean {
    const views = [...this.all.values()];
    for (const m of views) m.assertAlive();
    const owned = views.flatMap((m) => m.assignment);
    return (
      views.every((m) => m.generation > after && m.generation === views[0]!.generation) &&
      owned.length === this.partitions &&
      new Set(owned).size === this.partitions
    );
  }

  /** Waits until settled on a generation after `after` (one that counts a member that just joined). */
  async settled(what: string, after = -1, timeoutMs = 30_000): Promise<void> {
    await waitFor(what, () => this.isSettled(after), timeoutMs).catch((error: Error) => {
      throw new Error(`${error.message}: ${this.describe()}`);
    });
  }

  /** What each member last reported: for failure messages. */
  describe(): string {
    return [...this.all.values()]
      .map(
        (m) =>
          `${m.name} (pid ${m.child.pid}) generation ${m.generation} [${m.assignment.join(' ')}] handled ` +
          `${m.handledCount} events [${m.events.map((e) => `${e.event}@${timeOfDay(e.at)}`).join(' ')}] stderr ` +
          JSON.stringify(m.stderr.slice(-2_000)),
      )
      .join('; ');
  }

  /**
   * Stops a member (SIGSTOP) and resolves with the wall-clock time at which the process was seen stopped. kill()
   * returns once the signal is sent, and on another core the process may still start a handler before it takes
   * effect: only a handler that began after this moment began after the stop.
   */
  async stop(name: string): Promise<number> {
    const pid = this.get(name).pid;
    process.kill(pid, 'SIGSTOP');
    this.stopped.add(name);
    await waitFor(`${name} (pid ${pid}) to be stopped`, () => processState(pid) === 'T', 5_000);
    return performance.timeOrigin + performance.now();
  }

  resume(name: string): void {
    process.kill(this.get(name).pid, 'SIGCONT');
    this.stopped.delete(name);
  }

  /** Continues stopped members, closes every member (SIGTERM, 20 s), kills what is left: no child outlives a case. */
  async stopAll(): Promise<Record<string, number | null | undefined>> {
    for (const name of [...this.stopped]) this.resume(name);
    const running = [...this.all.values()].filter((m) => m.child.exitCode === null && m.child.signalCode === null);
    for (const m of running) m.child.kill('SIGTERM');
    const codes: Record<string, number | null | undefined> = {};
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), 20_000)));
    await Promise.all(
      [...this.all.values()].map(async (m) => {
        codes[m.name] = await Promise.race([m.exited, timeout]);
      }),
    );
    clearTimeout(timer);
    for (const m of running) if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL');
    return codes;
  }

  /**
   * Where `later` handled a partition that `earlier` had handled before it, and `earlier` then went on handling it
   * after `later` began: one line per partition, with the messages, offsets and times (empty when none). In these
   * cases no partition ever goes back, so any of it is a member that kept a partition it no longer owned.
   */
  handledAfterTakeover(earlier: string, later: string, except?: (interval: Interval) => boolean): string[] {
    const lines: string[] = [];
    for (let partition = 0; partition < this.partitions; partition++) {
      const of = (name: string) =>
        this.log.intervals.filter((i) => i.partition === partition && i.member === name && i.count > 0 && !except?.(i));
      const mine = of(earlier);
      const theirs = of(later);
      if (mine.length === 0 || theirs.length === 0) continue;
      const firstOfTheirs = theirs.reduce((a, b) => (b.start < a.start ? b : a));
      const began = firstOfTheirs.start;
      // Only when `earlier` had the partition first.
      if (!(Math.min(...mine.map((i) => i.start)) < began)) continue;
      const after = mine.filter((i) => i.end > began);
      if (after.length === 0) continue;
      const messages = after.reduce((n, i) => n + i.count, 0);
      const firstOffset = Math.min(...after.map((i) => i.first));
      const lastOffset = Math.max(...after.map((i) => i.last));
      const until = Math.max(...after.map((i) => i.end));
      lines.push(
        `${earlier} handled ${messages} messages of partition ${partition} (offsets ${firstOffset}..${lastOffset}, ` +
          `until ${timeOfDay(until)}) after ${later} had begun handling it at ${timeOfDay(began)} ` +
          `(from offset ${firstOfTheirs.first})`,
      );
    }
    return lines;
  }

  /**
   * Duplicates a lost session does not explain: an offset may be handled twice only when whoever handled it first
   * lost its session after that (it reported `lost`) and had not committed past it by then. The messages of the
   * `excused` intervals (a handler call in flight when its process was stopped) count as handled first by their
   * member, whenever they were reported.
   */
  unexplainedDuplicates(excused: readonly Interval[] = []): string[] {
    const firstBy = (partition: number, offset: number, members: string[]) =>
      excused.find((i) => i.partition === partition && i.first <= offset && offset <= i.last)?.member ?? members[0]!;
    return this.log
      .duplicates()
      .filter(({ partition, offset, members }) => {
        const first = this.all.get(firstBy(partition, offset, members));
        const lost = first?.events.find((e) => e.event === 'lost');
        return !(lost && members.length === 2 && offset >= first!.committedBefore(partition, lost.at));
      })
      .map(({ partition, offset, members }) => `${partition}:${offset} by ${members.join(', ')}`);
  }
}

/** The first and last few of a list, for failure messages. */
export function abridged(items: readonly string[], keep = 6): string {
  if (items.length <= 2 * keep) return items.join('; ');
  return `${items.slice(0, keep).join('; ')}; ... ${items.length - 2 * keep} more ...; ${items.slice(-keep).join('; ')}`;
}

/** Offsets nobody handled, as ranges per partition. */
export function lostRanges(log: ProcessingLog, produced: readonly number[]): string[] {
  const ranges: string[] = [];
  for (const { partition, offset } of log.lost(produced)) {
    const last = ranges.at(-1);
    const match = last?.match(/^(\d+):(\d+)\.\.(\d+)$/);
    if (match && Number(match[1]) === partition && Number(match[3]) === offset - 1) {
      ranges[ranges.length - 1] = `${partition}:${match[2]}..${offset}`;
    } else ranges.push(`${partition}:${offset}..${offset}`);
  }
  return ranges.map((range) => {
    const [partition, span] = range.split(':') as [string, string];
    const [from, to] = span.split('..').map(Number) as [number, number];
    return `partition ${partition} offsets ${from}..${to} (${to - from + 1} messages) never handled`;
  });
}

/** `count` messages of 100 bytes into one partition, in one produce call (so one fetch can take them all). */
async function fill(topic: string, partition: number, count: number): Promise<void> {
  await produce(
    topic,
    Array.from({ length: count }, (_, i) => ({ partition, value: Buffer.alloc(100, i % 10) })),
  );
}

export interface SafetyOutcome {
  /** Lines that describe a broken promise; the case expects none. */
  readonly overlaps: string[];
  readonly afterTakeover: string[];
  readonly lost: string[];
  readonly duplicates: string[];
  /** One line for the test log. */
  readonly summary: string;
}

/**
 * 1. One partition, 1,000 messages of 100 bytes in it. Member a handles them with a synchronous handler that holds
 * the event loop for 20 ms per message (eachMessage). Once a is handling, b joins, and the strategy gives the
 * partition to the newcomer, so it moves to b while a's handler works through its batch. a must never handle a message of the
 * partition after b began handling it; nothing may be lost; a must keep its session (its heartbeats go out while
 * the handler works) and hand the partition over gracefully, so there is no duplicate at all.
 */
export async function runCpuBoundHandler(backend: EndToEndBackend, topic: string): Promise<SafetyOutcome> {
  const messages = 1_000;
  const members = new Members(backend, backend.newNamespace(), topic, 1);
  const began = performance.now();
  await fill(topic, 0, messages);
  const cpu = { handler: 'cpu', mode: 'eachMessage', handleMs: 20 } as const;
  try {
    const a = members.start('a', { ...cpu, strategy: 'newcomer' });
    await waitFor('a to handle its first message', () => (a.assertAlive(), a.handledCount > 0), 30_000);
    const joinedAt = performance.timeOrigin + performance.now();
    const b = members.start('b', { ...cpu, strategy: 'newcomer' });
    await waitFor(`all ${messages} messages handled`, () => members.log.complete([messages]), 120_000).catch(
      (error: Error) => {
        throw new Error(`${error.message} (${members.log.count} handled): ${members.describe()}`);
      },
    );
    await members.settled('the group to settle after the last message');
    await sleep(500); // a handler still running would show as a duplicate or an overlap
    const lostAt = a.events.find((e) => e.event === 'lost');
    if (lostAt) throw new Error(`a lost its session at ${timeOfDay(lostAt.at)}: no heartbeat went out while it worked`);
    if (b.handledCount === 0) throw new Error(`the partition never moved to b: ${members.describe()}`);
    if (a.handledCount + b.handledCount !== messages) {
      throw new Error(`a handled ${a.handledCount} and b ${b.handledCount} of ${messages}: duplicates`);
    }
    return outcome(members, [messages], ['a', 'b'], began, `b joined at ${timeOfDay(joinedAt)}`);
  } finally {
    await members.stopAll();
    await backend.removeNamespaces([members.namespace]).catch(() => undefined);
  }
}

/**
 * 2. One partition, two members, then 3,000 messages of 100 bytes, an async handler of about 2 ms per message
 * (eachMessage). Once it has handled 300, the owner is stopped (SIGSTOP) mid-batch for 2.5 times its session timeout,
 * so the other takes the partition over; then it continues (SIGCONT). It must not handle another message of the
 * partition; nothing may be lost; duplicates only from its last commit before the stop.
 */
export async function runStoppedMember(backend: EndToEndBackend, topic: string): Promise<SafetyOutcome> {
  const messages = 3_000;
  const members = new Members(backend, backend.newNamespace(), topic, 1);
  const began = performance.now();
  const async2ms = { handler: 'async', mode: 'eachMessage', handleMs: 4 } as const;
  try {
    // Both members first, so that the owner is still early in the batch when it is stopped, however slow the
    // machine: the 3,000 messages come in one produce call once the group has settled.
    const a = members.start('a', async2ms);
    const b = members.start('b', async2ms);
    await waitFor('a and b to be ready', () => a.memberId !== undefined && b.memberId !== undefined, 30_000);
    await members.settled('a and b to settle');
    await sleep(1_000);
    await members.settled('a and b to stay settled');
    await fill(topic, 0, messages);
    await waitFor('a member to handle 300 messages', () => a.handledCount >= 300 || b.handledCount >= 300, 30_000);
    const owner = a.handledCount >= 300 ? a : b;
    const other = owner === a ? b : a;
    if (members.log.complete([messages])) {
      throw new Error(`${owner.name} handled all ${messages} messages before it could be stopped mid-batch`);
    }
    const stoppedAt = await members.stop(owner.name);
    const handledBeforeStop = owner.handledCount;
    await sleep(2.5 * SAFETY_SESSION_TIMEOUT);
    const continuedAt = performance.timeOrigin + performance.now();
    members.resume(owner.name);
    await waitFor(`all ${messages} messages handled`, () => members.log.complete([messages]), 90_000).catch(
      (error: Error) => {
        throw new Error(`${error.message} (${members.log.count} handled): ${members.describe()}`);
      },
    );
    await members.settled(`the group to settle after ${owner.name} continued`);
    await sleep(500);
    // The handler call in flight when the process was stopped ends after the other member began: no consumer can
    // prevent that without the handler's help (an AbortSignal it checks), so it is left out of the overlap checks.
    // Its message is in the stopped member's uncommitted window, so handling it again is an allowed duplicate.
    const inFlight = (i: Interval) => i.member === owner.name && i.start <= stoppedAt && i.end >= stoppedAt;
    const excused = members.log.intervals.filter(inFlight);
    return outcome(
      members,
      [messages],
      [owner.name, other.name],
      began,
      `${owner.name} stopped at ${timeOfDay(stoppedAt)} after ${handledBeforeStop} messages, committed ` +
        `${owner.committedBefore(0, stoppedAt)}, continued at ${timeOfDay(continuedAt)}; in flight at the stop ` +
        `(left out of the overlap checks): ${excused.map((i) => `${i.first}..${i.last}`).join(' ') || 'nothing'}`,
      { except: inFlight },
    );
  } finally {
    await members.stopAll();
    await backend.removeNamespaces([members.namespace]).catch(() => undefined);
  }
}

/**
 * 3. offsetReset 'latest', two partitions. Member a owns both; its handler is held on a message of partition 0 while
 * 50 messages of partition 1 (produced after a started reading it) wait in its buffer; b joins and partition 1
 * moves to b. Every one of the 50 must be handled exactly once.
 */
export async function runLatestHandoff(backend: EndToEndBackend, topic: string): Promise<SafetyOutcome> {
  const waiting = 50;
  const holdMs = 10_000;
  const members = new Members(backend, backend.newNamespace(), topic, 2);
  const began = performance.now();
  const latest = { handler: 'async', mode: 'eachMessage', offsetReset: 'latest' } as const;
  try {
    const a = members.start('a', { ...latest, holdAt: { partition: 0, offset: 0, ms: holdMs } });
    await members.settled('a to own both partitions');
    // Until a reads partition 0 from its end, nothing produced would count: produce to it until a holds one.
    await waitFor(
      'a to hold a message of partition 0',
      async () => {
        if (a.holding) return true;
        await fill(topic, 0, 1);
        await sleep(200);
        return a.holding !== undefined;
      },
      20_000,
    );
    // Partition 1 was positioned at its end with partition 0; the 50 come after that and reach a's buffer.
    await sleep(300);
    await fill(topic, 1, waiting);
    await sleep(1_000);
    const b = members.start('b', latest);
    await members.settled('b to join', a.generation);
    const held = a.holding!;
    if (b.assignment.join() !== `${topic}:1` || members.log.handled.get(0)?.has(held.offset)) {
      throw new Error(`expected partition 1 to move to b while a holds partition 0: ${members.describe()}`);
    }
    const movedAt = performance.timeOrigin + performance.now();
    // a's held message ends after holdMs; the 50 get 15 s more.
    const done = () => (members.log.handled.get(1)?.size ?? 0) >= waiting;
    await waitFor(`the ${waiting} messages of partition 1 handled`, done, holdMs + 15_000).catch(() => undefined);
    await sleep(500);
    // Partition 0's messages before the held one may rightly be skipped ('latest'): only partition 1 is counted.
    return outcome(
      members,
      [0, waiting],
      ['a', 'b'],
      began,
      `partition 1 moved to b at ${timeOfDay(movedAt)}; b's commits of partition 1: ` +
        `[${b.commitLog
          .filter((c) => c.partition === 1)
          .map((c) => c.offset)
          .join(' ')}]`,
      { strictDuplicates: true },
    );
  } finally {
    await members.stopAll();
    await backend.removeNamespaces([members.namespace]).catch(() => undefined);
  }
}

function outcome(
  members: Members,
  produced: readonly number[],
  [first, second]: readonly string[],
  began: number,
  story: string,
  { strictDuplicates = false, except }: { strictDuplicates?: boolean; except?: (interval: Interval) => boolean } = {},
): SafetyOutcome {
  const log = members.log;
  const duplicates = strictDuplicates
    ? log.duplicates().map(({ partition, offset, members: who }) => `${partition}:${offset} by ${who.join(', ')}`)
    : members.unexplainedDuplicates(except ? log.intervals.filter(except) : []);
  const perMember = [...members.all.values()]
    .map((m) => {
      const events = m.events.map((e) => `${e.event} at ${timeOfDay(e.at)}`).join(', ');
      return `${m.name} handled ${m.handledCount}${events ? ` (${events})` : ''}`;
    })
    .join(', ');
  return {
    overlaps: log.describeOverlaps(except),
    afterTakeover: [
      ...members.handledAfterTakeover(first!, second!, except),
      ...members.handledAfterTakeover(second!, first!, except),
    ],
    lost: lostRanges(log, produced),
    duplicates: duplicates.length > 0 ? [`${duplicates.length}: ${abridged(duplicates)}`] : [],
    summary:
      `${perMember}; ${log.duplicates().length} duplicates; ${story}; ` +
      `${Math.round((performance.now() - began) / 1000)} s`,
  };
}

/** The checks of every case, as jest expectations: each list names what broke. */
export function expectSafe(result: SafetyOutcome): void {
  // The summary is on both sides: not a check, but printed with a failure as what happened.
  expect({
    summary: result.summary,
    overlaps: result.overlaps,
    afterTakeover: result.afterTakeover,
    lost: result.lost,
    duplicates: result.duplicates,
  }).toEqual({ summary: result.summary, overlaps: [], afterTakeover: [], lost: [], duplicates: [] });
}

/** The three cases as a jest suite, for a backend package. */
export function describeHandlerSafety(backend: EndToEndBackend): void {
  const t = topics();
  afterAll(() => t.cleanup(), 60_000);

  describe(`safety under real handlers with ${backend.name}: members in separate processes, real Kafka`, () => {
    it('a CPU-bound handler (20 ms of busy loop per message, 1,000 messages on one partition) while a member joins: never two members on the partition, nothing lost', async () => {
      const result = await runCpuBoundHandler(backend, await t.create('safety-cpu', 1));
      process.stdout.write(`${backend.name} CPU-bound handler: ${result.summary}\n`);
      expectSafe(result);
    }, 240_000);

    it('a member stopped (SIGSTOP) mid-batch for 2.5 sessions, then continued: it handles nothing more of the partition it lost, nothing lost', async () => {
      const result = await runStoppedMember(backend, await t.create('safety-stop', 1));
      process.stdout.write(`${backend.name} SIGSTOP: ${result.summary}\n`);
      expectSafe(result);
    }, 180_000);

    it("offsetReset 'latest': a partition that moves while its messages wait in the old owner's buffer delivers every one of them exactly once", async () => {
      const result = await runLatestHandoff(backend, await t.create('safety-latest', 2));
      process.stdout.write(`${backend.name} latest handoff: ${result.summary}\n`);
      expectSafe(result);
    }, 120_000);
  });
}
