// Stalled partitions and poison messages (issue 19) with every member in a process of its own, on real Kafka and the
// backend package's server: a handler that hangs for good on one partition (stallAction 'handoff': only that
// partition moves, the member's other partitions and the other members' keep flowing), and a message that makes the
// process exit every time it is handled (poison: after maxAttempts crashes onPoison is called once, and the group
// moves on with nothing else skipped). The members are the backend package's fixture (the shared member program plus
// its backend line); the backend packages run these cases with `describeStalls`.
import { parseMarker, type AllocatorBackend } from '@kiel/consumer/internal';
import { ChildMember, type ChildMemberConfig } from './child-member';
import type { EndToEndBackend } from './end-to-end';
import { KAFKA_BROKERS, uniqueName } from './env';
import { ProcessingLog } from './group-harness';
import { waitFor } from './wait';
import { produce, topics } from './kafka';

/** A backend package's side: its end-to-end fixture, and a backend of its kind for the test process itself. */
export interface StallsBackend extends EndToEndBackend {
  /** A backend on `namespace` (ZooKeeper root path, etcd prefix), for reading markers. */
  createBackend(namespace: string): AllocatorBackend;
}

/** Session timeout / lease TTL of these cases, ms. */
const SESSION_TIMEOUT = 4_000;
const PARTITIONS = 6;

const now = () => performance.timeOrigin + performance.now();

class Members {
  readonly log = new ProcessingLog();
  readonly all: ChildMember[] = [];
  readonly group = uniqueName('kiel-stall');
  readonly namespace: string;
  readonly backend: AllocatorBackend;

  constructor(
    private readonly server: StallsBackend,
    readonly topic: string,
    private readonly common: Partial<ChildMemberConfig>,
  ) {
    this.namespace = server.newNamespace();
    this.backend = server.createBackend(this.namespace);
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
        mode: 'eachMessage',
        ...this.common,
        ...options,
      },
      this.log,
    );
    this.all.push(member);
    return member;
  }

  get running(): ChildMember[] {
    return this.all.filter((m) => m.child.exitCode === null && m.child.signalCode === null);
  }

  /**
   * The running members on one generation that gives each partition to exactly one of them, each owning some (a member
   * that has joined but reads the generation before its join owns nothing yet: the rebalance for it is still to come).
   */
  async settled(what: string, timeoutMs = 90_000): Promise<void> {
    await waitFor(
      what,
      () => {
        const members = this.running;
        const owned = members.flatMap((m) => m.assignment);
        return (
          members.length > 0 &&
          members.every((m) => m.generation === members[0]!.generation && m.assignment.length > 0) &&
          owned.length === PARTITIONS &&
          new Set(owned).size === PARTITIONS
        );
      },
      timeoutMs,
    ).catch((error: Error) => {
      throw new Error(`${error.message}: ${this.describe()}`);
    });
  }

  owner(partition: number): ChildMember | undefined {
    return this.running.find((m) => m.partitions.includes(partition));
  }

  handledAfter(member: string, partition: number, after: number): boolean {
    return this.log.intervals.some(
      (i) => i.member === member && i.partition === partition && i.count > 0 && i.start >= after,
    );
  }

  describe(): string {
    return this.all
      .map(
        (m) =>
          `${m.name}${m.child.exitCode !== null ? ` (exited ${m.child.exitCode})` : ''} generation ${m.generation} ` +
          `[${m.assignment.join(' ')}] handled ${m.handledCount} stderr ${JSON.stringify(m.stderr.slice(-600))}`,
      )
      .join('; ');
  }

  async stopAll(): Promise<void> {
    const running = this.running;
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

/** Messages `0..count-1` on every partition; `special` replaces the value of one of them. */
function messages(count: number, base: number, special?: { partition: number; index: number; value: string }) {
  return Array.from({ length: PARTITIONS }, (_, partition) =>
    Array.from({ length: count }, (_, i) => ({
      partition,
      value: special && special.partition === partition && special.index === i ? special.value : String(base + i),
    })),
  ).flat();
}

/**
 * 1. Three members, six partitions, stallTimeout 2 s with stallAction 'handoff'. Member a's handler hangs for good at
 * offset 10 of one of its partitions (P). a reports it stalled at offset 10 and gives up P alone: another member
 * takes P from offset 10 (what a handled was committed), a keeps its other partitions and handles what arrives on
 * them, b and c keep theirs; a does not get P back; nothing lost, nothing handled twice, no overlap.
 */
export async function runStalledHandoff(server: StallsBackend, topic: string) {
  const stallTimeout = 2_000;
  const members = new Members(server, topic, { stallTimeout, stallAction: 'handoff' });
  try {
    const a = members.start('a', { hangOnValue: true });
    const b = members.start('b');
    const c = members.start('c');
    await members.settled('a, b and c settled');
    const before = { a: a.partitions, b: b.partitions, c: c.partitions };
    if (before.a.length === 0) throw new Error(`a got no partition: ${members.describe()}`);
    const hung = before.a[0]!;
    const producedAt = now();
    await produce(topic, messages(20, 0, { partition: hung, index: 10, value: 'HANG' }));
    await waitFor('a to report the stall', () => a.stalls.length > 0, 60_000);
    await waitFor(
      'another member to own the stalled partition',
      () => members.owner(hung) !== undefined && members.owner(hung) !== a && !a.partitions.includes(hung),
      60_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}: ${members.describe()}`);
    });
    const movedAt = now();
    const next = members.owner(hung)!;
    // More messages everywhere: every partition flows, a's other partitions on a.
    await produce(topic, messages(20, 20));
    const produced = new Array<number>(PARTITIONS).fill(40);
    await waitFor('every message handled', () => members.log.complete(produced), 60_000).catch((error: Error) => {
      throw new Error(
        `${error.message}: lost ${JSON.stringify(members.log.lost(produced).slice(0, 10))}; ${members.describe()}`,
      );
    });
    await members.backend.connect();
    const markerText = await members.backend.readMarker(members.group, `${topic}:${hung}`);
    return {
      hung,
      next: next.name,
      stalls: a.stalls.map(({ partition, offset }) => ({ partition, offset })),
      stallReportedMs: a.stalls[0]!.at - producedAt,
      handoffMs: movedAt - a.stalls[0]!.at,
      aKept: a.partitions.sort(),
      aExpected: before.a.filter((p) => p !== hung).sort(),
      aFlowing: before.a.filter((p) => p !== hung).every((p) => members.handledAfter('a', p, movedAt)),
      othersKept: [b, c].every((m) => before[m.name as 'b' | 'c'].every((p) => m.partitions.includes(p))),
      othersFlowing: [b, c].every((m) =>
        before[m.name as 'b' | 'c'].every((p) => members.handledAfter(m.name, p, movedAt)),
      ),
      handledByNext: members.log.intervals
        .filter((i) => i.member === next.name && i.partition === hung && i.count > 0)
        .map((i) => i.first),
      aGotItBack: a.history.some((h) => h.at > movedAt && h.assignment.includes(`${topic}:${hung}`)),
      marker: markerText === null ? null : parseMarker(markerText, 'marker'),
      lost: members.log.lost(produced).length,
      duplicates: members.log.duplicates().length,
      overlaps: members.log.describeOverlaps(),
      unexpected: members.all.flatMap((m) => m.unexpected),
    };
  } finally {
    await members.stopAll();
  }
}

/**
 * 2. Three members, six partitions, poison { maxAttempts: 3 }. Offset 10 of partition 0 makes any process that handles
 * it exit; the test starts a new process for each that exits (as a supervisor would). After three such exits, the
 * owner of partition 0 calls onPoison once with that message and 3 attempts and moves on: every other message is
 * handled, the committed offset of partition 0 passes it, and messages produced afterwards flow.
 */
export async function runPoisonMessage(server: StallsBackend, topic: string) {
  const maxAttempts = 3;
  const members = new Members(server, topic, { poison: { maxAttempts }, exitOnValue: true });
  let restarts = 0;
  let stopped = false;
  const supervise = (member: ChildMember): void => {
    void member.exited.then((code) => {
      if (stopped || code !== 3) return;
      restarts++;
      supervise(members.start(`${member.name.split('#')[0]}#${restarts}`));
    });
  };
  try {
    for (const name of ['a', 'b', 'c']) supervise(members.start(name));
    await members.settled('a, b and c settled');
    const poison = { partition: 0, offset: 10 };
    const startedAt = now();
    await produce(topic, messages(20, 0, { partition: poison.partition, index: poison.offset, value: 'EXIT' }));
    const poisoned = () => members.all.flatMap((m) => m.poisoned);
    await waitFor('onPoison', () => poisoned().length > 0, 150_000).catch((error: Error) => {
      throw new Error(`${error.message}: ${members.describe()}`);
    });
    const poisonedAt = now();
    await produce(topic, messages(10, 20));
    const produced = new Array<number>(PARTITIONS).fill(30);
    const lostOthers = () =>
      members.log.lost(produced).filter((l) => !(l.partition === poison.partition && l.offset === poison.offset));
    await waitFor('every other message handled', () => lostOthers().length === 0, 90_000).catch((error: Error) => {
      throw new Error(`${error.message}: lost ${JSON.stringify(lostOthers().slice(0, 10))}; ${members.describe()}`);
    });
    await members.settled('settled after the poison message');
    const owner = members.owner(poison.partition)!;
    await waitFor(
      'partition 0 committed past the poison',
      () => (owner.commits.get(poison.partition) ?? 0) >= 30,
      30_000,
    );
    return {
      exits: members.all.flatMap((m) => m.exiting),
      restarts,
      poisoned: poisoned(),
      poisonMs: poisonedAt - startedAt,
      handledPoison: members.log.intervals.some(
        (i) => i.partition === poison.partition && i.count > 0 && i.first <= poison.offset && i.last >= poison.offset,
      ),
      lostOthers: lostOthers().length,
      committed: owner.commits.get(poison.partition),
      unexpected: members.all.flatMap((m) => m.unexpected),
    };
  } finally {
    stopped = true;
    await members.stopAll();
  }
}

/** The two cases as a jest suite, for a backend package. */
export function describeStalls(server: StallsBackend): void {
  const t = topics();
  afterAll(() => t.cleanup(), 60_000);

  describe(`stalled partitions and poison messages with ${server.name}: members in separate processes, real Kafka`, () => {
    it("a handler that hangs on one partition: only that partition is handed off (stallAction 'handoff'), the others keep their owner and flow", async () => {
      const r = await runStalledHandoff(server, await t.create('stall-hang', PARTITIONS));
      process.stdout.write(
        `${server.name} stalled handoff: reported ${Math.round(r.stallReportedMs)} ms after the produce (stallTimeout ` +
          `2000 ms), partition ${r.hung} owned by ${r.next} ${Math.round(r.handoffMs)} ms after the report\n`,
      );
      expect(r.stalls).toEqual([{ partition: r.hung, offset: 10 }]);
      expect(r.aKept).toEqual(r.aExpected);
      expect({ aFlowing: r.aFlowing, othersKept: r.othersKept, othersFlowing: r.othersFlowing }).toEqual({
        aFlowing: true,
        othersKept: true,
        othersFlowing: true,
      });
      expect(Math.min(...r.handledByNext)).toBe(10);
      expect(r.aGotItBack).toBe(false);
      expect({ lost: r.lost, duplicates: r.duplicates, overlaps: r.overlaps, unexpected: r.unexpected }).toEqual({
        lost: 0,
        duplicates: 0,
        overlaps: [],
        unexpected: [],
      });
    }, 240_000);

    it('a message that makes the process exit every time it is handled: after 3 crashes onPoison is called once and the group moves on, nothing else skipped', async () => {
      const r = await runPoisonMessage(server, await t.create('stall-poison', PARTITIONS));
      process.stdout.write(
        `${server.name} poison message: ${r.exits.length} exits, onPoison ${Math.round(r.poisonMs)} ms after the ` +
          `produce, ${r.restarts} processes restarted\n`,
      );
      expect(r.exits).toEqual([
        { partition: 0, offset: 10 },
        { partition: 0, offset: 10 },
        { partition: 0, offset: 10 },
      ]);
      expect(r.poisoned).toEqual([{ partition: 0, offset: 10, attempts: 3 }]);
      expect({ handledPoison: r.handledPoison, lostOthers: r.lostOthers, unexpected: r.unexpected }).toEqual({
        handledPoison: false,
        lostOthers: 0,
        unexpected: [],
      });
      expect(r.committed).toBeGreaterThanOrEqual(30);
    }, 300_000);
  });
}
