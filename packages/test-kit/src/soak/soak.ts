// The chaos soak: `npm run soak -- --backend zk|etcd --minutes N --seed S`.
//
// It brings up a stack of its own (stack.ts), starts 4 to 6 member processes (the backend package's member
// fixture: the shared member program, packages/test-kit/programs/member-program.js) with mixed handlers, a
// producer writing sequence-numbered messages to 24 partitions and more, and injects faults drawn at random from
// the seed, one at a time: after each it waits for the group to converge (or for the limit to pass) and draws the
// next after a pause. Every member reaches the store through a TCP proxy of its own, so that one member can be cut
// off from the store while the others are fine. Everything is recorded in a run directory (run-log.ts); at the end
// the checker (check.ts) judges it, prints its table and writes the picture (picture.ts).
import { execSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import { ChildMember, type ChildMemberConfig } from '../child-member';
import { ProcessingLog, timeOfDay } from '../group-harness';
import { sleep } from '../wait';
import { TcpProxy } from '../tcp-proxy';
import { checkRun, formatTable, type CheckResult } from './check';
import { timelineSvg } from './picture';
import { FAULT_KINDS, GroupTimeline, RunWriter, type FaultEvent, type FaultKind, type RunEvent } from './run-log';
import { ClusterStack, SingleStack, type SoakStack } from './stack';

const ROOT = path.resolve(__dirname, '../../../..');

export interface SoakOptions {
  readonly backend: 'zk' | 'etcd';
  readonly minutes: number;
  readonly seed: number;
  readonly members: number;
  readonly partitions: number;
  /** Messages per second the producer writes. */
  readonly rate: number;
  /** Session timeout / lease TTL, ms. */
  readonly sessionTimeout: number;
  /** `cluster` (default) or `single` (see stack.ts). */
  readonly stack: 'cluster' | 'single';
  readonly portBase: number;
  /** A private cluster on `portBase` (set when --port-base is given), rather than the one `npm test` uses. */
  readonly privateCluster: boolean;
  readonly out: string;
  /** Fault kinds to draw from (all that the stack allows, by default). */
  readonly faults: readonly FaultKind[] | undefined;
  /** Draw every kind once (in an order drawn from the seed) before any kind comes again: a short run sees them all. */
  readonly cover: boolean;
}

/** The handlers of the members, in order: fast; async slow; CPU-bound synchronous; occasionally throwing; ... */
const HANDLERS: ReadonlyArray<Partial<ChildMemberConfig> & { label: string }> = [
  { label: 'fast: async batch', handler: 'async', mode: 'eachBatch', handleMs: 1 },
  { label: 'slow async: 0-30 ms a message', handler: 'async', mode: 'eachMessage', handleMs: 30 },
  { label: 'CPU-bound: 3 ms sync a message', handler: 'cpu', mode: 'eachMessage', handleMs: 3 },
  { label: 'throws at offsets % 97', handler: 'throws', mode: 'eachMessage', handleMs: 2 },
  { label: 'CPU-bound: 1 ms a message, whole batch', handler: 'cpu', mode: 'eachBatch', handleMs: 1 },
  { label: 'async: 0-20 ms a batch', handler: 'async', mode: 'eachBatch', handleMs: 20 },
];

const USAGE = `usage: npm run soak -- --backend zk|etcd [--minutes N] [--seed S] [--members 4-6] [--partitions N]
  [--rate msgs/s] [--session ms] [--stack cluster|single] [--port-base N] [--out DIR] [--faults kind,kind,...]
  [--cover]
  --cover: every fault kind once (in an order drawn from the seed) before any comes again, as CI's short soaks do
  --stack cluster (default): 3 brokers and the backend's 3 store nodes of scripts/stack --cluster; without
    --port-base the cluster of npm test (KIEL_CLUSTER_PORT_BASE, default 19100), reused if it runs; with it, a
    private cluster (state in .stack/soak-<base>/), which two soaks at once need (bases 100 apart)
  --stack single: one broker and one store node on private ports from --port-base (default 31000/32000)
  node scripts/soak.js check DIR     judge a run directory again (table and picture)
fault kinds: ${FAULT_KINDS.join(', ')}`;

const OPTIONS = new Set([
  'backend',
  'minutes',
  'seed',
  'members',
  'partitions',
  'rate',
  'session',
  'stack',
  'port-base',
  'out',
  'faults',
  'cover',
]);

/** Reads the soak's command line (`--backend`, `--minutes`, `--seed`, ...). */
export function parseOptions(argv: readonly string[]): SoakOptions {
  for (const arg of argv) {
    if (arg.startsWith('--') && !OPTIONS.has(arg.slice(2))) throw new Error(`unknown option ${arg}\n${USAGE}`);
  }
  const get = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return undefined;
    const value = argv[i + 1];
    if (value === undefined || value.startsWith('--')) throw new Error(`--${name} needs a value\n${USAGE}`);
    return value;
  };
  const num = (name: string, fallback: number, min: number, max: number): number => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} ${raw}: expected ${min}..${max}`);
    return n;
  };
  const backend = get('backend');
  if (backend !== 'zk' && backend !== 'etcd') throw new Error(`--backend must be zk or etcd\n${USAGE}`);
  const seed = num('seed', Date.now() % 100_000, 0, 2 ** 31);
  const faults = get('faults')?.split(',') as FaultKind[] | undefined;
  for (const f of faults ?? []) if (!FAULT_KINDS.includes(f)) throw new Error(`unknown fault kind ${f}\n${USAGE}`);
  const minutes = num('minutes', 3, 0.2, 24 * 60);
  const stack = get('stack') ?? 'cluster';
  if (stack !== 'cluster' && stack !== 'single') throw new Error(`--stack must be cluster or single\n${USAGE}`);
  const clusterBase = Number(process.env.KIEL_CLUSTER_PORT_BASE ?? 19100);
  const singleBase = backend === 'zk' ? 31000 : 32000;
  const portBase = num('port-base', stack === 'cluster' ? clusterBase : singleBase, 1024, 65000);
  return {
    backend,
    minutes,
    seed,
    members: num('members', 5, 4, 6),
    partitions: num('partitions', 24, 24, 200),
    rate: num('rate', 100, 1, 5000),
    sessionTimeout: num('session', 6000, 2000, 10_000),
    stack,
    portBase,
    privateCluster: get('port-base') !== undefined,
    out: path.resolve(get('out') ?? path.join(ROOT, '.stack', 'soak-runs', `${backend}-seed${seed}-${Date.now()}`)),
    faults,
    cover: argv.includes('--cover'),
  };
}

/** mulberry32: a small seeded PRNG, so that a seed gives the same draws. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const now = () => performance.timeOrigin + performance.now();

class Soak {
  readonly writer: RunWriter;
  readonly log = new ProcessingLog();
  readonly timeline: GroupTimeline;
  readonly random: () => number;
  readonly names: string[];
  readonly topic = `kiel-soak-${Date.now().toString(36)}`;
  readonly group = `kiel-soak-${Math.random().toString(36).slice(2, 8)}`;
  readonly namespace: string;
  readonly startedAt = now();
  private readonly current = new Map<string, ChildMember>();
  private readonly incarnationCount = new Map<string, number>();
  private readonly expectedExit = new Set<string>();
  private readonly proxies = new Map<string, TcpProxy[]>();
  private readonly stopped = new Set<string>();
  private readonly fixture: string;
  private partitionCount: number;
  /** Partitions the producer writes to (new ones join a moment after they are created). */
  private producing: number;
  private readonly produced: number[] = [];
  private producerRunning = false;
  private producerLoop: Promise<void> | undefined;
  private kafka!: Kafka;
  private admin!: Admin;
  private producer!: Producer;
  private faultId = 0;
  private shuttingDown = false;
  private readonly respawns: Array<Promise<void>> = [];
  /** Set on SIGINT: no fault after the one in progress. */
  stopRequested = false;

  constructor(
    readonly options: SoakOptions,
    readonly stack: SoakStack,
  ) {
    this.writer = new RunWriter(options.out);
    this.random = seeded(options.seed);
    this.names = Array.from({ length: options.members }, (_, i) => `m${i + 1}`);
    this.namespace = options.backend === 'zk' ? `/kiel-soak-${options.seed}` : `kiel-soak-${options.seed}/`;
    this.partitionCount = options.partitions;
    this.producing = options.partitions;
    this.timeline = new GroupTimeline(this.topic, options.partitions, this.startedAt);
    const pkg = options.backend === 'zk' ? 'allocator-zk' : 'allocator-etcd';
    this.fixture = path.join(ROOT, 'packages', pkg, 'test/fixtures/group-member-process.js');
  }

  event(e: RunEvent): void {
    this.writer.event(e);
    this.timeline.onEvent(e);
  }

  private between(min: number, max: number): number {
    return min + this.random() * (max - min);
  }

  private pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.random() * list.length)]!;
  }

  /** Fault kinds this stack can do. */
  available(): FaultKind[] {
    const kinds = this.options.faults ?? FAULT_KINDS;
    return kinds.filter((k) => {
      if (k === 'leadership-move') return this.stack.brokerNodes.length > 1;
      if (k === 'partitions-added') return this.partitionCount + 4 <= this.options.partitions * 2;
      return true;
    });
  }

  async start(): Promise<void> {
    const s = this.options;
    this.writer.settings({
      backend: s.backend,
      seed: s.seed,
      minutes: s.minutes,
      sessionTimeout: s.sessionTimeout,
      topic: this.topic,
      group: this.group,
      partitions: s.partitions,
      members: this.names,
      stack: this.stack.kind,
      startedAt: this.startedAt,
    });
    this.kafka = new Kafka({ clientId: 'kiel-soak', brokers: this.stack.brokers, logLevel: logLevel.NOTHING });
    this.admin = this.kafka.admin();
    await this.admin.connect();
    await this.admin.createTopics({
      topics: [
        {
          topic: this.topic,
          numPartitions: s.partitions,
          replicationFactor: Math.min(3, this.stack.brokerNodes.length),
          // acks=all is only as good as the replicas that must have a message: with the default of 1, a leader
          // alone in its ISR acknowledges, and a SIGKILL then loses what it acknowledged.
          ...(this.stack.brokerNodes.length >= 3
            ? { configEntries: [{ name: 'min.insync.replicas', value: '2' }] }
            : {}),
        },
      ],
      waitForLeaders: true,
    });
    for (const name of this.names) {
      const list: TcpProxy[] = [];
      for (const node of this.stack.storeNodes) list.push(await TcpProxy.start(this.stack.storePort(node)));
      this.proxies.set(name, list);
    }
    for (const name of this.names) this.spawn(name);
    // No fault before every member is in: one still connecting when the store goes down would just fail to start.
    const why = await this.waitConverged(300_000);
    if (why !== undefined) throw new Error(`the group did not converge within 300 s of its start: ${why}`);
    this.producer = this.kafka.producer({
      metadataMaxAge: 1_000,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 },
    });
    await this.producer.connect();
    this.startProducer();
  }

  private spawn(name: string): ChildMember {
    const n = (this.incarnationCount.get(name) ?? 0) + 1;
    this.incarnationCount.set(name, n);
    const incarnation = `${name}.${n}`;
    const handler = HANDLERS[this.names.indexOf(name) % HANDLERS.length]!;
    const { label, ...handlerConfig } = handler;
    const member = new ChildMember(
      incarnation,
      this.fixture,
      {
        brokers: this.stack.brokers,
        group: this.group,
        topic: this.topic,
        strategy: 'sticky',
        ...handlerConfig,
        metadataMaxAge: 2_000,
        hosts: this.proxies
          .get(name)!
          .map((p) => p.hosts)
          .join(','),
        namespace: this.namespace,
        sessionTimeout: this.options.sessionTimeout,
      },
      this.log,
    );
    let pending = '';
    member.child.stdout!.on('data', (chunk: Buffer) => {
      const at = now();
      const lines = (pending + chunk.toString()).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (line === '') continue;
        this.writer.memberLine(incarnation, at, line);
        const [kind, ...rest] = line.split(' ');
        this.timeline.onLine(incarnation, { at, kind: kind!, rest });
      }
    });
    // Written as it comes, each line with the wall-clock time it arrived here, so that what a member reports (its
    // errors; with NODE_DEBUG=kiel-etcd or kiel-zk, its backend's trace) lines up with the run's events.
    const stderrFile = path.join(this.writer.dir, 'members', `${incarnation}.stderr`);
    let stderrPending = '';
    member.child.stderr!.on('data', (chunk: Buffer) => {
      const lines = (stderrPending + chunk.toString()).split('\n');
      stderrPending = lines.pop()!;
      const at = Math.round(now());
      if (lines.length > 0) fs.appendFileSync(stderrFile, lines.map((line) => `${at} ${line}\n`).join(''));
    });
    this.event({ type: 'spawn', at: now(), member: name, incarnation, pid: member.pid, handler: label });
    this.current.set(name, member);
    void member.exited.then((code) => {
      const expected = this.expectedExit.has(incarnation);
      this.event({ type: 'exit', at: now(), incarnation, code, signal: member.child.signalCode, expected });
      if (stderrPending) fs.appendFileSync(stderrFile, `${Math.round(now())} ${stderrPending}\n`);
      if (!expected && !this.shuttingDown && this.current.get(name) === member) {
        process.stderr.write(`soak: ${incarnation} exited by itself (code ${code}); starting it again\n`);
        this.respawns.push(sleep(1_000).then(() => void (this.shuttingDown || this.spawn(name))));
      }
    });
    return member;
  }

  /**
   * Waits until the member's new process reported READY (connected, registered), up to 5 min: a restart fault ends
   * there, so that the time a loaded machine takes to start a Node process is not counted as the group's (at a load
   * average of 35 on two cores, a member took over 60 s, the earlier limit, and its late join was counted as the
   * group's convergence).
   */
  private async ready(member: ChildMember): Promise<number> {
    const deadline = Date.now() + 300_000;
    while (member.memberId === undefined && Date.now() < deadline && member.child.exitCode === null) await sleep(20);
    return now();
  }

  private signal(name: string, signal: 'SIGSTOP' | 'SIGCONT' | 'SIGKILL' | 'SIGTERM'): string {
    const member = this.current.get(name)!;
    if (signal === 'SIGKILL' || signal === 'SIGTERM') this.expectedExit.add(member.name);
    this.event({ type: 'signal', at: now(), incarnation: member.name, signal });
    member.child.kill(signal);
    if (signal === 'SIGSTOP') this.stopped.add(name);
    if (signal === 'SIGCONT') this.stopped.delete(name);
    return member.name;
  }

  private startProducer(): void {
    this.producerRunning = true;
    const perTick = Math.max(1, Math.round(this.options.rate / 10));
    let seq = 0;
    this.producerLoop = (async () => {
      let pending: Array<{ partition: number; value: string }> = [];
      while (this.producerRunning) {
        const tickStart = Date.now();
        if (pending.length === 0) {
          pending = Array.from({ length: perTick }, () => {
            const partition = seq % this.producing;
            return { partition, value: String(seq++) };
          });
        }
        // One send() per partition: kafkajs 2.2.4 (sendMessages.js) retries a send only to the brokers that have
        // not answered yet, so when a killed broker's partitions move to a broker that already answered for its
        // own, their messages are dropped and send() still resolves: acknowledged, never written (seen in a soak
        // run; kafkajs issue #1303, open).
        const byPartition = new Map<number, Array<{ partition: number; value: string }>>();
        for (const m of pending) byPartition.set(m.partition, [...(byPartition.get(m.partition) ?? []), m]);
        const sent = await Promise.allSettled(
          [...byPartition.values()].map(async (messages) => {
            await this.producer.send({ topic: this.topic, acks: -1, messages });
            return messages;
          }),
        );
        const written = new Set<{ partition: number; value: string }>();
        for (const r of sent) {
          if (r.status !== 'fulfilled') continue;
          for (const m of r.value) {
            written.add(m);
            this.produced[m.partition] = (this.produced[m.partition] ?? 0) + 1;
          }
        }
        pending = pending.filter((m) => !written.has(m));
        // A broker is down or moving: the rest again shortly (the log may get them twice; the checker counts
        // offsets, so that is fine).
        if (pending.length > 0) await sleep(300);
        await sleep(Math.max(0, 100 - (Date.now() - tickStart)));
      }
    })();
  }

  async stopProducer(): Promise<void> {
    this.producerRunning = false;
    await this.producerLoop;
    await this.producer.disconnect();
  }

  /**
   * Waits up to `ms` for the group to converge and stay so for `stableMs` (a session found lost just after a fault
   * ends breaks a group that looked converged); returns why not when it did not.
   */
  async waitConverged(ms: number, stableMs = 2_000): Promise<string | undefined> {
    const deadline = Date.now() + ms;
    let since: number | undefined;
    for (;;) {
      const why = this.timeline.notConvergedAt(now());
      if (why === undefined) since ??= Date.now();
      else since = undefined;
      if (since !== undefined && Date.now() - since >= stableMs) return undefined;
      if (Date.now() > deadline) return why ?? 'converged only just';
      await sleep(100);
    }
  }

  /** Injects one fault of `kind`, heals it, and records it. */
  async inject(kind: FaultKind): Promise<FaultEvent> {
    const id = ++this.faultId;
    const S = this.options.sessionTimeout;
    const running = this.names.filter((n) => !this.stopped.has(n));
    const member = this.pick(running);
    const start = now();
    let target = '';
    let detail = '';
    let killed: string[] | undefined;
    let end: number | undefined;
    switch (kind) {
      case 'graceful-restart': {
        const inc = this.signal(member, 'SIGTERM');
        const m = this.current.get(member)!;
        const exited = await Promise.race([m.exited.then(() => true), sleep(30_000).then(() => false)]);
        if (!exited) {
          this.signal(member, 'SIGKILL');
          await m.exited;
        }
        const next = this.spawn(member);
        const spawnedAt = now();
        end = await this.ready(next);
        target = member;
        detail =
          `SIGTERM ${inc}${exited ? '' : ' (no exit in 30 s: SIGKILL)'}, then ${next.name} ` +
          `(ready ${Math.round(end - spawnedAt)} ms after its start)`;
        break;
      }
      case 'kill-restart': {
        const inc = this.signal(member, 'SIGKILL');
        killed = [inc];
        await this.current.get(member)!.exited;
        const pause = Math.round(this.between(0, 3_000));
        await sleep(pause);
        const next = this.spawn(member);
        const spawnedAt = now();
        end = await this.ready(next);
        target = member;
        detail = `SIGKILL ${inc}, ${next.name} ${pause} ms later (ready ${Math.round(end - spawnedAt)} ms after its start)`;
        break;
      }
      case 'stop-member': {
        const ms = Math.round(this.between(1.5, 2.5) * S);
        const inc = this.signal(member, 'SIGSTOP');
        await sleep(ms);
        this.signal(member, 'SIGCONT');
        target = member;
        detail = `SIGSTOP ${inc} for ${ms} ms`;
        break;
      }
      case 'member-cut-off': {
        const ms = Math.round(this.between(0.4, 2.2) * S);
        const how = this.random() < 0.5 ? 'cut' : 'freeze';
        const proxies = this.proxies.get(member)!;
        for (const p of proxies) {
          if (how === 'cut') p.cut();
          else p.freeze();
        }
        await sleep(ms);
        for (const p of proxies) {
          if (how === 'cut') p.restore();
          else p.thaw();
        }
        target = member;
        detail = `${this.current.get(member)!.name} cut off from the store (${how === 'cut' ? 'connections reset and refused' : 'traffic frozen'}) for ${ms} ms`;
        break;
      }
      case 'store-leader-kill': {
        const leader = await this.stack.storeLeader();
        await this.stack.kill(leader);
        const down = Math.round(this.between(1_000, 4_000));
        await sleep(down);
        await this.stack.start(leader);
        target = leader;
        detail = `SIGKILL store leader ${leader}, restarted after ${down} ms`;
        break;
      }
      case 'store-freeze': {
        const ms = Math.round(this.between(0.3, 1.5) * S);
        const nodes = this.stack.storeNodes;
        // All at once: one after the other, under load, the first would stay frozen seconds longer than the rest.
        await Promise.all(nodes.map((n) => this.stack.pause(n)));
        await sleep(ms);
        await Promise.all(nodes.map((n) => this.stack.resume(n)));
        target = nodes.join(',');
        detail = `SIGSTOP ${nodes.join(', ')} for ${ms} ms`;
        break;
      }
      case 'store-quorum-loss': {
        const ms = Math.round((this.random() < 0.5 ? this.between(0.3, 0.7) : this.between(1.5, 2.5)) * S);
        const all = this.stack.storeNodes;
        const nodes = all.length >= 3 ? this.shuffle(all).slice(0, 2) : all;
        await Promise.all(nodes.map((n) => this.stack.kill(n)));
        await sleep(ms);
        await Promise.all(nodes.map((n) => this.stack.start(n)));
        target = nodes.join(',');
        detail = `${nodes.join(', ')} down (SIGKILL) for ${ms} ms (${ms < S ? 'less' : 'more'} than the session)`;
        break;
      }
      case 'broker-kill': {
        const broker = this.pick(this.stack.brokerNodes);
        await this.stack.kill(broker);
        const down = Math.round(this.between(1_000, 5_000));
        await sleep(down);
        await this.stack.start(broker);
        target = broker;
        detail = `SIGKILL ${broker}, restarted after ${down} ms`;
        break;
      }
      case 'leadership-move': {
        // A controlled shutdown moves every leadership off the broker; once it is back, a preferred leader election
        // moves them back to it.
        const broker = this.pick(this.stack.brokerNodes);
        await this.stack.stop(broker);
        await this.stack.start(broker);
        await this.stack.electPreferred(this.topic, this.partitionCount);
        target = broker;
        detail = `controlled shutdown of ${broker} (its leaderships move), restart, preferred leader election`;
        break;
      }
      case 'partitions-added': {
        const count = this.partitionCount + 4;
        await this.admin.createPartitions({ topicPartitions: [{ topic: this.topic, count }] });
        this.partitionCount = count;
        this.event({ type: 'partitions', at: now(), count });
        target = this.topic;
        detail = `partitions ${count - 4} -> ${count}`;
        // The producer writes to them once its metadata has them.
        setTimeout(() => (this.producing = count), 2_000);
        break;
      }
    }
    const fault: FaultEvent = {
      type: 'fault',
      id,
      kind,
      target,
      start,
      end: end ?? now(),
      detail,
      ...(killed ? { killed } : {}),
    };
    this.event(fault);
    return fault;
  }

  private shuffle<T>(list: readonly T[]): T[] {
    const copy = [...list];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [copy[i], copy[j]] = [copy[j]!, copy[i]!];
    }
    return copy;
  }

  async endOffsets(): Promise<number[]> {
    const offsets = await this.admin.fetchTopicOffsets(this.topic);
    const ends = new Array<number>(this.partitionCount).fill(0);
    for (const o of offsets) ends[o.partition] = Number(o.high);
    return ends;
  }

  /** Stops producing, waits until every message in the log was handled, closes the members. */
  async finish(): Promise<void> {
    await this.stopProducer();
    await Promise.all(this.respawns);
    for (const name of [...this.stopped]) this.signal(name, 'SIGCONT');
    const ends = await this.endOffsets();
    const deadline = Date.now() + 180_000;
    while (!this.log.complete(ends) && Date.now() < deadline) await sleep(250);
    if (!this.log.complete(ends)) process.stderr.write('soak: not every message was handled within 180 s of the end\n');
    await this.waitConverged(this.options.sessionTimeout + 5_000);
    await sleep(2_000); // a late redelivery would show as a duplicate
    this.event({ type: 'final', at: now(), endOffsets: await this.endOffsets() });
    this.event({ type: 'produced', at: now(), perPartition: Array.from(this.produced, (n) => n ?? 0) });
    await this.close();
  }

  async close(): Promise<void> {
    this.shuttingDown = true;
    for (const name of [...this.stopped]) this.signal(name, 'SIGCONT');
    const live = [...this.current.values()].filter((m) => m.child.exitCode === null && m.child.signalCode === null);
    for (const m of live) {
      this.expectedExit.add(m.name);
      this.event({ type: 'signal', at: now(), incarnation: m.name, signal: 'SIGTERM' });
      m.child.kill('SIGTERM');
    }
    await Promise.race([Promise.all(live.map((m) => m.exited)), sleep(30_000)]);
    for (const m of live) if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL');
    await sleep(200); // the exit events
    for (const list of this.proxies.values()) for (const p of list) await p.close();
    await this.admin?.disconnect().catch(() => undefined);
    this.writer.close();
  }

  async runFaults(): Promise<void> {
    // The minutes count from when the group first converged and the producer started.
    const deadline = now() + this.options.minutes * 60_000;
    const limit = this.options.sessionTimeout + 5_000;
    const drawn = new Set<FaultKind>();
    while (now() < deadline - 15_000 && !this.stopRequested) {
      await sleep(this.between(2_000, 6_000));
      let candidates = this.available();
      if (this.options.cover) {
        if (candidates.every((k) => drawn.has(k))) drawn.clear();
        candidates = candidates.filter((k) => !drawn.has(k));
      }
      const kind = this.pick(candidates);
      drawn.add(kind);
      process.stderr.write(
        `soak: +${Math.round((now() - this.startedAt) / 1000)} s fault #${this.faultId + 1} ${kind} ... `,
      );
      const fault = await this.inject(kind);
      const why = await this.waitConverged(limit + 15_000);
      process.stderr.write(
        `${fault.detail}; ${why === undefined ? `converged at +${((now() - fault.end) / 1000).toFixed(1)} s` : `NOT converged: ${why}`}\n`,
      );
    }
  }
}

function gitCommit(): string {
  try {
    return execSync('git rev-parse --short HEAD', { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

/** Judges a run directory: writes table.md and timeline.svg next to it. */
export function judge(dir: string): { result: CheckResult; table: string } {
  const result = checkRun(dir);
  const table = formatTable(result, gitCommit());
  fs.writeFileSync(path.join(dir, 'table.md'), table + '\n');
  fs.writeFileSync(path.join(dir, 'timeline.svg'), timelineSvg(result));
  return { result, table };
}

/** Judges a run directory and prints the table; true when it passed. */
export function report(dir: string): boolean {
  const { result, table } = judge(dir);
  process.stdout.write(`${table}\n\nrun directory: ${dir}\npicture: ${path.join(dir, 'timeline.svg')}\n`);
  return result.failures.length === 0;
}

/** Runs a soak with the command line's options and judges it (what `npm run soak` does, minus the printing). */
export async function soak(argv: readonly string[]): Promise<{ dir: string; result: CheckResult; table: string }> {
  const options = parseOptions(argv);
  await runSoak(options);
  return { dir: options.out, ...judge(options.out) };
}

async function runSoak(options: SoakOptions): Promise<void> {
  const stack: SoakStack =
    options.stack === 'cluster'
      ? new ClusterStack(options.backend, options.portBase, options.privateCluster)
      : new SingleStack(options.backend, options.portBase);
  process.stderr.write(
    `soak: ${options.backend}, seed ${options.seed}, ${options.minutes} min; run directory ${options.out}\n`,
  );
  const stackStarted = Date.now();
  await stack.up();
  process.stderr.write(`soak: ${stack.kind} stack up in ${((Date.now() - stackStarted) / 1000).toFixed(1)} s\n`);
  const soak = new Soak(options, stack);
  const onSignal = (signal: string) => {
    soak.stopRequested = true;
    process.stderr.write(`soak: ${signal}; finishing after the fault in progress\n`);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await soak.start();
    await soak.runFaults();
    await soak.finish();
  } catch (error) {
    process.stderr.write(`soak: failed: ${error instanceof Error ? error.stack : error}\n`);
    await soak.close().catch(() => undefined);
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await stack.down().catch((e) => process.stderr.write(`soak: stack down: ${e}\n`));
  }
  process.stderr.write(`soak: done at ${timeOfDay(now())}\n`);
}

/** `npm run soak`: runs a soak (or `check DIR` judges one again); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'check') {
    if (!argv[1]) throw new Error(USAGE);
    return report(path.resolve(argv[1])) ? 0 : 1;
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const options = parseOptions(argv);
  await runSoak(options);
  return report(options.out) ? 0 : 1;
}
