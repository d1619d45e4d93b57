// Restarts and deploys (issue 19) with every member in a process of its own, on real Kafka and the backend package's
// server: a named member killed (SIGKILL) and back within rebalanceDelay, then killed for good; a rolling restart
// with close({ restarting: true }); a freeze across a rolling deploy; 32 members starting at once with
// maxMovesPerRebalance. The members are the backend package's fixture (the shared member program plus its backend
// line); what they report feeds one ProcessingLog.
import { spawn } from 'node:child_process';
import {
  freezeGroup,
  parseAllocation,
  unfreezeGroup,
  type AllocationRecord,
  type AllocatorBackend,
  type Unsubscribe,
} from '@kiel/consumer';
import { ChildMember, type ChildMemberConfig } from './child-member';
import type { EndToEndBackend } from './end-to-end';
import { KAFKA_BROKERS, uniqueName } from './env';
import { ContinuousProducer, ProcessingLog } from './group-harness';
import { sleep, waitFor } from './wait';
import { produce, topics } from './kafka';

/** A backend package's side: its end-to-end fixture, and a backend of its kind for the test process itself. */
export interface OperationsBackend extends EndToEndBackend {
  /** A backend on `namespace` (ZooKeeper root path, etcd prefix), for reading records and freezing. */
  createBackend(namespace: string): AllocatorBackend;
}

/**
 * Session timeout / lease TTL of these cases, ms. Long enough for a member process that gets little CPU (tests run
 * under `nice` beside other work) to keep its session: with 4 s, such members lost their sessions and fenced
 * themselves over and over, which is right of them but is not what these cases are about.
 */
const SESSION_TIMEOUT = 10_000;

const now = () => performance.timeOrigin + performance.now();
const sameSet = (a: readonly string[], b: readonly string[]) => [...a].sort().join() === [...b].sort().join();

/** The members of one case on one group, topic and namespace. */
class Fleet {
  readonly log = new ProcessingLog();
  readonly all = new Map<string, ChildMember>();
  readonly group = uniqueName('kiel-ops');
  readonly namespace: string;
  readonly backend: AllocatorBackend;

  constructor(
    private readonly server: OperationsBackend,
    readonly topic: string,
    readonly partitions: number,
    private readonly common: Partial<ChildMemberConfig> = {},
  ) {
    this.namespace = server.newNamespace();
    this.backend = server.createBackend(this.namespace);
  }

  /**
   * A member process that loads but starts only on `release()`: restarts below start it beforehand, so that what they
   * measure is kiel's restart, not how long a process starved of CPU takes to load its modules.
   */
  async preload(name: string, options: Partial<ChildMemberConfig> = {}): Promise<ChildMember> {
    const member = this.start(name, { ...options, holdStart: true });
    await waitFor(
      `${name} loaded`,
      () => {
        member.assertAlive();
        return member.loaded;
      },
      120_000,
    );
    return member;
  }

  start(name: string, options: Partial<ChildMemberConfig> = {}): ChildMember {
    const member = new ChildMember(
      name,
      this.server.fixture,
      {
        brokers: KAFKA_BROKERS,
        group: this.group,
        topic: this.topic,
        strategy: 'sticky',
        hosts: this.server.hosts,
        namespace: this.namespace,
        sessionTimeout: SESSION_TIMEOUT,
        handler: 'async',
        handleMs: 2,
        ...this.common,
        ...options,
      },
      this.log,
    );
    this.all.set(name, member);
    return member;
  }

  /** The published allocation, as the server has it. */
  async allocation(): Promise<AllocationRecord | undefined> {
    await this.backend.connect();
    const record = await this.backend.readRecord(this.group, 'allocation');
    return record ? parseAllocation(record.value, record.location) : undefined;
  }

  /** Every generation published from now on, in order (a watch may skip one that was quickly replaced). */
  async watchAllocations(): Promise<{ records: AllocationRecord[]; stop: Unsubscribe }> {
    await this.backend.connect();
    const records: AllocationRecord[] = [];
    const stop = this.backend.watchRecord(this.group, 'allocation', (r) => {
      if (r === null) return;
      const record = parseAllocation(r.value, r.location);
      if ((records.at(-1)?.generation ?? -1) < record.generation) records.push(record);
    });
    return { records, stop };
  }

  /** The live `members` are on one generation that gives each partition to exactly one of them. */
  async settled(what: string, members: readonly ChildMember[], timeoutMs = 90_000): Promise<void> {
    await waitFor(
      what,
      async () => {
        for (const m of members) m.assertAlive();
        const owned = members.flatMap((m) => m.assignment);
        const record = await this.allocation();
        return (
          record !== undefined &&
          record.waiting === undefined &&
          record.throttled === undefined &&
          members.every((m) => m.generation === record.generation) &&
          owned.length === this.partitions &&
          new Set(owned).size === this.partitions
        );
      },
      timeoutMs,
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}: ${await this.diagnose()}`);
    });
  }

  /** The first time `member` handled a message of `partition` (wall clock), or undefined. */
  firstHandled(member: string, partition: number, after = 0): number | undefined {
    const starts = this.log.intervals
      .filter((i) => i.member === member && i.partition === partition && i.count > 0 && i.start >= after)
      .map((i) => i.start);
    return starts.length > 0 ? Math.min(...starts) : undefined;
  }

  lastHandled(member: string, partition: number): number | undefined {
    const ends = this.log.intervals
      .filter((i) => i.member === member && i.partition === partition && i.count > 0)
      .map((i) => i.end);
    return ends.length > 0 ? Math.max(...ends) : undefined;
  }

  /**
   * The assignments `member` reported from `since` on that differ from `expected`: it gained something, or gave up
   * something it had. Not counted: the empty one a member reports after its own close's hand-back, and a part of its
   * own partitions reported by a new incarnation that was still taking them back when the next generation came (a
   * rebalance event reports a superseded generation's progress); a partition that really moved shows up as a gain
   * on the member that took it, and in the final assignment.
   */
  changes(member: ChildMember, since: number, expected: readonly string[]): string[] {
    const history = member.history.filter((h) => h.at >= since);
    // A member that started after `since` (a new incarnation): until it first reports all of its partitions, a report
    // of a part of them is it taking them back. A member that was there before gets no such allowance.
    const started = member.history.length > 0 && member.history[0]!.at >= since;
    const firstComplete = started ? history.findIndex((h) => sameSet(h.assignment, expected)) : 0;
    return history
      .filter((h, i) => {
        if (sameSet(h.assignment, expected)) return false;
        if (member.left && h.assignment.length === 0) return false;
        const takingBack = (firstComplete < 0 || i < firstComplete) && h.assignment.every((p) => expected.includes(p));
        return !takingBack;
      })
      .map(
        (h) =>
          `${member.name} generation ${h.generation}: [${h.assignment.join(' ')}] instead of [${expected.join(' ')}]`,
      );
  }

  describe(): string {
    return [...this.all.values()]
      .map(
        (m) =>
          `${m.name} generation ${m.generation} [${m.assignment.join(' ')}] handled ${m.handledCount} events ` +
          `${m.events.map((e) => e.event).join(',') || '-'} stderr ` +
          JSON.stringify(m.stderr.slice(-1_000)),
      )
      .join('; ');
  }

  /** describe(), plus the published allocation and the claims as the server has them: for a failure's message. */
  async diagnose(): Promise<string> {
    const state = await Promise.all([
      this.backend.readRecord(this.group, 'allocation').then((r) => r?.value ?? 'none'),
      this.backend.claims(this.group).then((claims) => [...claims].map(([p, c]) => `${p}=${c.value}`).join(' ')),
      this.backend.members(this.group).then((ms) => ms.map((m) => `${m.info.id}#${m.order}`).join(' ')),
    ]).catch((err: Error) => [`(reading the backend failed: ${err.message})`]);
    return `${this.describe()}; members ${state[2]}; allocation ${state[0]}; claims ${state[1]}`;
  }

  async stopAll(): Promise<void> {
    const running = [...this.all.values()].filter((m) => m.child.exitCode === null && m.child.signalCode === null);
    for (const m of running) m.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, 20_000)));
    await Promise.race([Promise.all(running.map((m) => m.exited)), timeout]);
    clearTimeout(timer);
    for (const m of running) if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL');
    await this.backend.close();
    await this.server.removeNamespaces([this.namespace]).catch(() => undefined);
  }
}

const partitionOf = (id: string) => Number(id.slice(id.lastIndexOf(':') + 1));

/** `topic:partition=member ...`, sorted: who owns what in a record. */
function ownersOf(record: AllocationRecord): string {
  return Object.entries(record.assignment)
    .flatMap(([member, ts]) => Object.entries(ts).flatMap(([t, ps]) => ps.map((p) => `${t}:${p}=${member}`)))
    .sort()
    .join(' ');
}

/**
 * 1. Three named members (a, b, c), six partitions, messages flowing, rebalanceDelay 20 s. b is killed (SIGKILL) and
 * started again at once under its name: it waits for its old session to end, then gets its partitions back. No
 * partition moves (every generation published meanwhile gives each partition to the same member), a and c never give
 * up or gain one, duplicates only in b's uncommitted window. Whether the leader saw b's old session end before the new
 * one joined (and published b as waited for) depends on how fast the new process starts: either way nothing moves.
 * Then b is killed again and not restarted: the leader waits for it, and its partitions move only once
 * rebalanceDelay has run out.
 */
export async function runNamedRestart(server: OperationsBackend, topic: string) {
  const rebalanceDelay = 20_000;
  const fleet = new Fleet(server, topic, 6, { rebalanceDelay });
  const producer = new ContinuousProducer(topic, 6, 6, 100);
  try {
    const a = fleet.start('a', { instanceId: 'a' });
    const b = fleet.start('b', { instanceId: 'b' });
    const c = fleet.start('c', { instanceId: 'c' });
    await fleet.settled('a, b and c settled', [a, b, c]);
    await producer.start();
    await waitFor('b handling', () => b.handledCount > 0, 60_000);
    const before = { a: a.assignment, b: b.assignment, c: c.assignment };
    const generation = a.generation;
    const settledAt = now();

    const ownersBefore = ownersOf((await fleet.allocation())!);
    const b2 = await fleet.preload('b2', { instanceId: 'b' });
    const published = await fleet.watchAllocations();
    const killedAt = now();
    b.child.kill('SIGKILL');
    await b.exited;
    // The restart comes once b's session has ended and the leader waits for it: what rebalanceDelay is for. (One
    // back within its old session is not even seen to go.)
    await waitFor(
      'the leader to wait for b',
      async () => (await fleet.allocation())?.waiting?.b !== undefined,
      SESSION_TIMEOUT * 3,
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}: ${await fleet.diagnose()}`);
    });
    const waitedAt = now();
    const waitingSince = (await fleet.allocation())!;
    const startedAt = now();
    b2.release();
    await waitFor(
      'b back on each of its partitions',
      () => before.b.every((id) => fleet.firstHandled('b2', partitionOf(id)) !== undefined),
      90_000,
    ).catch(async (error: Error) => {
      throw new Error(`${error.message} (${before.b.join(' ')}): ${await fleet.diagnose()}`);
    });
    const resumedAt = Math.max(...before.b.map((id) => fleet.firstHandled('b2', partitionOf(id))!));
    await fleet.settled('a, b and c settled again', [a, b2, c]);
    published.stop();
    const afterRestart = {
      b: b2.assignment,
      generationsPublished: (await fleet.allocation())!.generation - generation,
      // Every generation published meanwhile, as [who owns each partition]: all equal to the one before the kill.
      owners: published.records.map((r) => ownersOf(r)),
      waitedFor: published.records.some((r) => r.waiting?.b !== undefined),
      // How long before the deadline b was back: its partitions were due to move at waiting.b.
      backBeforeDeadlineMs: waitingSince.waiting!.b! - (b2.readyAt ?? Infinity),
      waitedAfterKillMs: waitedAt - killedAt,
    };
    const untouched = [...fleet.changes(a, settledAt, before.a), ...fleet.changes(c, settledAt, before.c)];
    const killedCommits = new Map(
      before.b.map((id) => [partitionOf(id), b.committedBefore(partitionOf(id), killedAt)]),
    );

    // Killed for good: its partitions wait rebalanceDelay, then move.
    const killedAgainAt = now();
    b2.child.kill('SIGKILL');
    await b2.exited;
    await waitFor(
      'the leader to wait for b',
      async () => (await fleet.allocation())?.waiting?.b !== undefined,
      SESSION_TIMEOUT * 3 + rebalanceDelay,
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}: ${await fleet.diagnose()}`);
    });
    const waitingRecord = (await fleet.allocation())!;
    await fleet.settled('a and c own every partition', [a, c], SESSION_TIMEOUT * 3 + rebalanceDelay + 20_000);
    const movedAfter = now() - killedAgainAt;
    await producer.stop();
    await waitFor('every message handled', () => fleet.log.complete(producer.produced), 60_000);
    const killed2Commits = new Map(
      before.b.map((id) => [partitionOf(id), b2.committedBefore(partitionOf(id), killedAgainAt)]),
    );
    // A message may come again only after a crash, to the next owner, from the crashed member's last commit: every
    // member that handled it but the last must be a killed incarnation (b, b2) that had not committed past it.
    const killed = new Map([
      ['b', killedCommits],
      ['b2', killed2Commits],
    ]);
    const unexplained = fleet.log.duplicates().filter(
      ({ partition, offset, members }) =>
        !members.slice(0, -1).every((m) => {
          const commits = killed.get(m);
          return commits !== undefined && offset >= (commits.get(partition) ?? 0);
        }),
    );
    return {
      before,
      afterRestart,
      waitingRecord,
      untouched,
      ownersBefore,
      resumeMs: resumedAt - killedAt,
      resumeAfterStartMs: resumedAt - startedAt,
      resumeMsPerPartition: before.b.map((id) => fleet.firstHandled('b2', partitionOf(id))! - startedAt),
      readyAfterStartMs: (b2.readyAt ?? NaN) - startedAt,
      movedAfter,
      rebalanceDelay,
      lost: fleet.log.lost(producer.produced).length,
      unexplained: unexplained.map((d) => `${d.partition}:${d.offset} by ${d.members.join(', ')}`),
      overlaps: fleet.log.describeOverlaps(),
      duplicates: fleet.log.duplicates().length,
      messages: producer.total,
    };
  } finally {
    await producer.stop().catch(() => undefined);
    await fleet.stopAll();
  }
}

/**
 * Restarts each of `names` in turn: `signal` to the running incarnation (SIGUSR2: close({ restarting: true }),
 * SIGTERM: close()), waits for it to exit, starts a new one under the same instanceId, and waits until the new one
 * handles each of its partitions again. Returns per partition the pause: from the old incarnation's last handled
 * message to the new one's first.
 */
async function rollingRestart(
  fleet: Fleet,
  current: Map<string, ChildMember>,
  signal: NodeJS.Signals,
): Promise<{ pauses: number[]; steps: string[] }> {
  const pauses: number[] = [];
  const steps: string[] = [];
  for (const [id, old] of [...current]) {
    const partitions = old.assignment.map(partitionOf);
    const next = await fleet.preload(`${id}#${old.name.split('#').length + 1}`, { instanceId: id });
    const signalledAt = now();
    old.child.kill(signal);
    const code = await old.exited;
    const exitedAt = now();
    if (code !== 0 || !old.left) throw new Error(`${old.name} did not close cleanly (${code}): ${old.stderr}`);
    next.release();
    current.set(id, next);
    void waitFor('ready', () => next.memberId !== undefined, 60_000)
      .then(() => {
        const readyAt = now();
        return waitFor('assigned', () => next.assignment.length > 0, 60_000).then(() => {
          steps.push(
            `${id}: closed in ${Math.round(exitedAt - signalledAt)} ms, started in ${Math.round(readyAt - exitedAt)} ms, ` +
              `assigned ${Math.round(now() - readyAt)} ms later`,
          );
        });
      })
      .catch(() => undefined);
    await waitFor(
      `${next.name} handling its partitions`,
      () => partitions.every((p) => fleet.firstHandled(next.name, p, signalledAt) !== undefined),
      90_000,
    ).catch(async (error: Error) => {
      throw new Error(`${error.message} (${partitions.join(' ')}): ${await fleet.diagnose()}`);
    });
    for (const p of partitions)
      pauses.push(fleet.firstHandled(next.name, p, signalledAt)! - fleet.lastHandled(old.name, p)!);
  }
  return { pauses, steps };
}

/**
 * 2. Four named members, eight partitions, messages flowing, rebalanceDelay 60 s. Each in turn closes with
 * `{ restarting: true }` and comes back under its name. No partition moves; nothing is lost or handled twice
 * (every handoff commits before it releases).
 */
export async function runRollingRestart(server: OperationsBackend, topic: string) {
  const fleet = new Fleet(server, topic, 8, { rebalanceDelay: 60_000 });
  const producer = new ContinuousProducer(topic, 8, 8, 100);
  try {
    const current = new Map(['r0', 'r1', 'r2', 'r3'].map((id) => [id, fleet.start(id, { instanceId: id })]));
    await fleet.settled('four members settled', [...current.values()]);
    const before = new Map([...current].map(([id, m]) => [id, m.assignment]));
    const generation = (await fleet.allocation())!.generation;
    const settledAt = now();
    await producer.start();
    await sleep(1_000);
    const { pauses, steps } = await rollingRestart(fleet, current, 'SIGUSR2');
    await fleet.settled('settled after the rolling restart', [...current.values()]);
    await producer.stop();
    await waitFor('every message handled', () => fleet.log.complete(producer.produced), 60_000);
    const moved = [...current].filter(([id, m]) => !sameSet(m.assignment, before.get(id)!)).map(([id]) => id);
    const changes = [...fleet.all.values()].flatMap((m) =>
      fleet.changes(m, settledAt, before.get(m.config.instanceId!)!),
    );
    return {
      moved,
      changes,
      pauses,
      steps,
      generations: (await fleet.allocation())!.generation - generation,
      lost: fleet.log.lost(producer.produced).length,
      duplicates: fleet.log.duplicates().length,
      overlaps: fleet.log.describeOverlaps(),
      messages: producer.total,
    };
  } finally {
    await producer.stop().catch(() => undefined);
    await fleet.stopAll();
  }
}

/**
 * 3. Three named members, six partitions, no rebalanceDelay. The group is frozen, each member is restarted with a
 * plain close() (which, unfrozen, would move its partitions at once), then the group is unfrozen. While frozen no
 * generation is published; each member comes back to its own partitions; nothing lost or handled twice.
 */
export async function runFrozenDeploy(server: OperationsBackend, topic: string) {
  const fleet = new Fleet(server, topic, 6);
  const producer = new ContinuousProducer(topic, 6, 6, 100);
  try {
    const current = new Map(['d0', 'd1', 'd2'].map((id) => [id, fleet.start(id, { instanceId: id })]));
    await fleet.settled('three members settled', [...current.values()]);
    const before = new Map([...current].map(([id, m]) => [id, m.assignment]));
    await producer.start();
    await sleep(1_000);
    const frozen = await freezeGroup(fleet.backend, fleet.group, { reason: 'deploy' });
    const generation = (await fleet.allocation())!.generation;
    const { pauses } = await rollingRestart(fleet, current, 'SIGTERM');
    const generationWhileFrozen = (await fleet.allocation())!.generation;
    const unfrozen = await unfreezeGroup(fleet.backend, fleet.group);
    await sleep(1_000);
    await fleet.settled('settled after the unfreeze', [...current.values()]);
    await producer.stop();
    await waitFor('every message handled', () => fleet.log.complete(producer.produced), 60_000);
    return {
      frozen: frozen.frozen,
      unfrozen: !unfrozen.frozen,
      generation,
      generationWhileFrozen,
      generationAfter: (await fleet.allocation())!.generation,
      moved: [...current].filter(([id, m]) => !sameSet(m.assignment, before.get(id)!)).map(([id]) => id),
      pauses,
      lost: fleet.log.lost(producer.produced).length,
      duplicates: fleet.log.duplicates().length,
      overlaps: fleet.log.describeOverlaps(),
    };
  } finally {
    await producer.stop().catch(() => undefined);
    await fleet.stopAll();
  }
}

/** Several members in one process (the fixture's `count`): lines `M <i> ...` feed the log as `<name>.<i>`. */
class MemberProcess {
  readonly exited: Promise<number | null>;
  readonly assignment = new Map<number, string[]>();
  readonly generation = new Map<number, number>();
  private stderrText = '';
  readonly child;

  constructor(
    readonly name: string,
    fixture: string,
    config: ChildMemberConfig & { count: number },
    log: ProcessingLog,
  ) {
    this.child = spawn(process.execPath, [fixture, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderrText += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
    let pending = '';
    this.child.stdout.on('data', (chunk: Buffer) => {
      const lines = (pending + chunk.toString()).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        const [tag, index, kind, ...rest] = line.split(' ');
        if (tag !== 'M') continue;
        const i = Number(index);
        if (kind === 'ASSIGNED') {
          this.generation.set(i, Number(rest[0]));
          this.assignment.set(i, rest[1] ? rest[1].split(',') : []);
        } else if (kind === 'HANDLED') {
          const offsets = rest[3] ? rest[3].split(',').map(Number) : [];
          log.record(`${name}.${i}`, Number(rest[0]), offsets, Number(rest[1]), Number(rest[2]));
        }
      }
    });
  }

  get stderr(): string {
    return this.stderrText;
  }
}

/**
 * Case 4's joiners: `MANY_PROCESSES` processes of `MANY_PER_PROCESS` members start together, after one seed member
 * that holds every partition: 1 + 7 × 9 = 64 members by default (`KIEL_OPS_MANY_PROCESSES`,
 * `KIEL_OPS_MEMBERS_PER_PROCESS` change it).
 */
const MANY_PROCESSES = Number(process.env.KIEL_OPS_MANY_PROCESSES ?? 7);
const MANY_PER_PROCESS = Number(process.env.KIEL_OPS_MEMBERS_PER_PROCESS ?? 9);
const MANY_MEMBERS = 1 + MANY_PROCESSES * MANY_PER_PROCESS;
const MANY_MAX_MOVES = 4;

/**
 * 4. One named member (the seed) holds all 64 partitions (20 messages each) when 63 more start together, in 7
 * processes of 9, with maxMovesPerRebalance 4 and the naive strategy. Every partition but one has to move away from
 * a live member, so the leader throttles: no published step moves more than 4 partitions between live members, and
 * the group still converges to one partition per member (in about ceil(63 / 4) = 16 steps). No two members handle a
 * partition at once; nothing is lost or handled twice.
 */
export async function runManyMembers(server: OperationsBackend, topic: string) {
  const partitions = MANY_MEMBERS;
  const maxMoves = MANY_MAX_MOVES;
  const common = {
    strategy: 'naive',
    // Many sessions starting at once on a small machine: a longer session rides out the start's CPU burst.
    sessionTimeout: 10_000,
    handleMs: 5,
    maxMovesPerRebalance: maxMoves,
  };
  const fleet = new Fleet(server, topic, partitions, common);
  const produced = new Array<number>(partitions).fill(20);
  await produce(
    topic,
    produced.flatMap((n, partition) => Array.from({ length: n }, (_, i) => ({ partition, value: String(i) }))),
  );
  const { records, stop: unwatch } = await fleet.watchAllocations();
  const members: MemberProcess[] = [];
  try {
    const seed = fleet.start('seed', { instanceId: 'seed' });
    await fleet.settled('the seed owns every partition', [seed]);
    const seedGeneration = seed.generation;
    const started = performance.now();
    for (let p = 0; p < MANY_PROCESSES; p++) {
      members.push(
        new MemberProcess(
          `p${p}`,
          server.fixture,
          {
            brokers: KAFKA_BROKERS,
            group: fleet.group,
            topic,
            hosts: server.hosts,
            namespace: fleet.namespace,
            handler: 'async',
            instanceId: `m${p}`,
            count: MANY_PER_PROCESS,
            ...common,
          },
          fleet.log,
        ),
      );
    }
    await waitFor(
      'one partition per member, every message handled',
      async () => {
        seed.assertAlive();
        for (const m of members) {
          if (m.child.exitCode !== null) throw new Error(`${m.name} exited: ${m.stderr.slice(-2_000)}`);
        }
        const record = records.at(-1);
        if (!record || record.throttled !== undefined || record.members.length !== MANY_MEMBERS) return false;
        const owned = [seed.assignment, ...members.flatMap((m) => [...m.assignment.values()])];
        return (
          owned.length === MANY_MEMBERS &&
          owned.every((a) => a.length === 1) &&
          seed.generation === record.generation &&
          members.every((m) => [...m.generation.values()].every((g) => g === record.generation)) &&
          fleet.log.complete(produced)
        );
      },
      300_000,
    ).catch(async (error: Error) => {
      const last = records.at(-1);
      throw new Error(
        `${error.message}: last generation ${last?.generation} with ${last?.members.length} members, throttled ` +
          `${last?.throttled}; seed [${seed.assignment.join(' ')}] generation ${seed.generation}; ` +
          members
            .map(
              (m) =>
                `${m.name}: ${m.assignment.size} members reporting, stderr ${JSON.stringify(m.stderr.slice(-500))}`,
            )
            .join('; '),
      );
    });
    const convergedMs = performance.now() - started;
    // Moves between live members per observed step (a watch may skip a step: then up to maxMoves per generation).
    const tooMany: string[] = [];
    let moves = 0;
    const ownerIn = (r: AllocationRecord) => {
      const owners = new Map<string, string>();
      for (const [member, ts] of Object.entries(r.assignment)) {
        for (const [t, ps] of Object.entries(ts)) for (const p of ps) owners.set(`${t}:${p}`, member);
      }
      return owners;
    };
    for (let i = 1; i < records.length; i++) {
      const [before, after] = [ownerIn(records[i - 1]!), ownerIn(records[i]!)];
      let moved = 0;
      for (const [id, owner] of before) if (records[i]!.members.includes(owner) && after.get(id) !== owner) moved++;
      moves += moved;
      const steps = records[i]!.generation - records[i - 1]!.generation;
      if (moved > maxMoves * steps) tooMany.push(`generation ${records[i]!.generation}: ${moved} moved`);
    }
    const last = records.at(-1)!;
    const joined = records.findIndex((r) => r.members.length === MANY_MEMBERS);
    return {
      convergedMs,
      seedGeneration,
      generations: last.generation - seedGeneration,
      generationsAfterAllJoined: joined < 0 ? -1 : last.generation - records[joined]!.generation,
      throttledSteps: records.filter((r) => r.throttled !== undefined).length,
      moves,
      tooMany,
      overlaps: fleet.log.describeOverlaps(),
      lost: fleet.log.lost(produced).length,
      duplicates: fleet.log.duplicates().length,
    };
  } finally {
    unwatch();
    for (const m of members) if (m.child.exitCode === null) m.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(members.map((m) => m.exited)),
      new Promise((resolve) => (timer = setTimeout(resolve, 30_000))),
    ]);
    clearTimeout(timer);
    for (const m of members) if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL');
    await fleet.stopAll();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** The four cases as a jest suite, for a backend package. */
export function describeOperations(server: OperationsBackend): void {
  const t = topics();
  afterAll(() => t.cleanup(), 60_000);

  describe(`restarts and deploys with ${server.name}: members in separate processes, real Kafka`, () => {
    it('a named member killed (SIGKILL) and restarted within rebalanceDelay gets its partitions back and nothing else moves; killed for good, its partitions move after the delay', async () => {
      const r = await runNamedRestart(server, await t.create('ops-named', 6));
      process.stdout.write(
        `${server.name} named restart: the leader waited for b ${Math.round(r.afterRestart.waitedAfterKillMs)} ms ` +
          `after the SIGKILL (session ${SESSION_TIMEOUT} ms); the new process, started then, connected after ` +
          `${Math.round(r.readyAfterStartMs)} ms (${Math.round(r.afterRestart.backBeforeDeadlineMs)} ms before the ` +
          `deadline) and handled each of its partitions again after ` +
          `${r.resumeMsPerPartition.map((ms) => Math.round(ms)).join(', ')} ms; ` +
          `${r.afterRestart.generationsPublished} generations published meanwhile, 0 partitions moved; killed for good: ` +
          `moved after ${Math.round(r.movedAfter)} ms (rebalanceDelay ${r.rebalanceDelay} ms); ${r.messages} messages, ` +
          `${r.duplicates} handled twice (all in b's uncommitted window)\n`,
      );
      expect(r.waitingRecord.assignment).toBeDefined();
      expect(r.waitingRecord.members).toContain('b');
      expect(sameSet(r.afterRestart.b, r.before.b)).toBe(true);
      expect(r.afterRestart.owners.filter((o) => o !== r.ownersBefore)).toEqual([]);
      expect(r.afterRestart.waitedFor).toBe(true);
      expect(r.afterRestart.backBeforeDeadlineMs).toBeGreaterThan(0);
      expect(r.untouched).toEqual([]);
      expect(r.movedAfter).toBeGreaterThanOrEqual(r.rebalanceDelay);
      expect({ lost: r.lost, unexplained: r.unexplained, overlaps: r.overlaps }).toEqual({
        lost: 0,
        unexplained: [],
        overlaps: [],
      });
    }, 300_000);

    it('a rolling restart of 4 named members with close({ restarting: true }): 0 partitions moved, nothing lost or handled twice', async () => {
      const r = await runRollingRestart(server, await t.create('ops-rolling', 8));
      process.stdout.write(
        `${server.name} rolling restart (4 members, 8 partitions): ${r.moved.length} members' partitions moved, ` +
          `${r.generations} generations published; pause per partition median ${Math.round(median(r.pauses))} ms, ` +
          `max ${Math.round(Math.max(...r.pauses))} ms, total ${Math.round(r.pauses.reduce((a, b) => a + b, 0))} ms; ` +
          `${r.messages} messages; ${r.steps.join('; ')}\n`,
      );
      expect({
        moved: r.moved,
        changes: r.changes,
        lost: r.lost,
        duplicates: r.duplicates,
        overlaps: r.overlaps,
      }).toEqual({ moved: [], changes: [], lost: 0, duplicates: 0, overlaps: [] });
      expect(r.pauses).toHaveLength(8);
    }, 300_000);

    it('a freeze across a rolling deploy (plain close()): no generation published while frozen, each member back to its own partitions', async () => {
      const r = await runFrozenDeploy(server, await t.create('ops-freeze', 6));
      process.stdout.write(
        `${server.name} frozen deploy: generation ${r.generation} kept while frozen (${r.generationWhileFrozen}), ` +
          `${r.generationAfter} after unfreeze; pause per partition median ${Math.round(median(r.pauses))} ms\n`,
      );
      expect(r).toMatchObject({
        frozen: true,
        unfrozen: true,
        generationWhileFrozen: r.generation,
        moved: [],
        lost: 0,
        duplicates: 0,
        overlaps: [],
      });
    }, 300_000);

    it(`${MANY_MEMBERS - 1} members starting together beside one that holds every partition, with maxMovesPerRebalance ${MANY_MAX_MOVES}: at most ${MANY_MAX_MOVES} moves per step, converge to one partition each, no overlap`, async () => {
      const r = await runManyMembers(server, await t.create('ops-many', MANY_MEMBERS));
      process.stdout.write(
        `${server.name} ${MANY_MEMBERS} members (${MANY_MEMBERS - 1} starting together), maxMovesPerRebalance ` +
          `${MANY_MAX_MOVES}: converged in ${Math.round(r.convergedMs)} ms, ${r.generations} generations after the ` +
          `seed's (${r.generationsAfterAllJoined} after all had joined, ${r.throttledSteps} of them throttled), ` +
          `${r.moves} moves between live members\n`,
      );
      expect({ tooMany: r.tooMany, overlaps: r.overlaps, lost: r.lost, duplicates: r.duplicates }).toEqual({
        tooMany: [],
        overlaps: [],
        lost: 0,
        duplicates: 0,
      });
      // The throttle was in force: the seed's partitions left it a few at a time.
      expect(r.moves).toBeGreaterThanOrEqual(MANY_MEMBERS - 1);
      expect(r.throttledSteps).toBeGreaterThan(0);
    }, 420_000);
  });
}
