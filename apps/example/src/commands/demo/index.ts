import { randomBytes } from 'node:crypto';
import { Command, InvalidArgumentError } from 'commander';
import type { Admin, Kafka, Producer } from 'kafkajs';
import {
  backendOption,
  brokersOption,
  createBackend,
  etcdOption,
  onStopSignal,
  positiveInt,
  reach,
  zkOption,
} from '../../common';
import { connectAdmin, connectProducer, kafkaClient, produceMessages } from '../../kafka';
import { strategyOption } from '../work';
import { watchPublications } from './observer';
import { ensureStack } from './stack';
import { verdict, type Publication, type RebalanceReport, type Step } from './verdict';
import { LiveView } from './view';
import { startWorker, stopGracefully, type Worker } from './worker';

export { generationTimings, type Publication, type RebalanceReport } from './verdict';

const PARTITIONS = 12;

interface DemoFlags {
  backend: 'zk' | 'etcd';
  strategy: string;
  workers: number;
  messages: number;
  sessionTimeout: number;
  brokers: string[];
  zk: string[];
  etcd: string[];
}

/** Minimum workers: one to stop gracefully, one to kill. */
function workerCount(text: string): number {
  const n = positiveInt(text);
  if (n < 2) throw new InvalidArgumentError('expected at least 2 (one is stopped gracefully, another is killed).');
  return n;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs: number, interrupted: () => boolean): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline || interrupted()) return false;
    await sleep(100);
  }
  return true;
}

/** `kiel demo`. */
export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'the whole system at work: workers share a 12-partition topic while one leaves, one is killed and one joins; ' +
        'ends with a verdict (exit 0 only if nothing was lost)',
    )
    .addOption(backendOption())
    .addOption(strategyOption())
    .option('--workers <n>', 'worker processes at the start (at least 2)', workerCount, 3)
    .option('--messages <n>', 'messages to produce', positiveInt, 20_000)
    .option(
      '--session-timeout <ms>',
      "workers' session timeout / lease TTL: how long the killed worker's partitions wait",
      positiveInt,
      6_000,
    )
    .addOption(brokersOption())
    .addOption(zkOption())
    .addOption(etcdOption())
    .addHelpText(
      'after',
      '\nStarts the local stack (scripts/stack up) when it is not running. The verdict table goes to stdout, the live\n' +
        'view to stderr. Duplicates are allowed only from the killed worker: messages it handled but had not committed.',
    )
    .action(async (flags: DemoFlags) => {
      await ensureStack(flags);
      const code = await new Demo(flags).run();
      if (code !== 0) process.exitCode = code;
    });
}

/**
 * One run of the demo, in phases: set up a topic, a group and an observer of its allocations; start the workers
 * and wait until they share the partitions; produce while the script stops one worker, kills another and adds
 * one; drain what is left and stop the rest; print the verdict; tear everything down.
 */
class Demo {
  private readonly id = randomBytes(4).toString('hex');
  private readonly topic = `kiel-demo-${this.id}`;
  private readonly group = `kiel-demo-${this.id}`;
  private readonly workers: Worker[] = [];
  /** Which workers handled each message number. */
  private readonly deliveries = new Map<number, string[]>();
  private readonly rebalances: RebalanceReport[] = [];
  private readonly steps: Step[] = [{ at: 0, what: 'start', trigger: true }];
  private produced = 0;
  private interrupted = false;
  private readonly view: LiveView;
  /** What tear-down undoes, in reverse order of set-up. */
  private readonly cleanups: Array<() => unknown> = [];

  constructor(private readonly flags: DemoFlags) {
    this.view = new LiveView(this.workers, () => ({
      produced: this.produced,
      consumed: this.deliveries.size,
      total: this.flags.messages,
    }));
    this.cleanups.push(() => this.view.stop());
  }

  /** Runs every phase; returns the exit code (0 only if nothing was lost and no duplicate is unexplained). */
  async run(): Promise<number> {
    try {
      const { kafka, publications } = await this.setUp();
      const producer = await connectProducer(kafka, this.flags.brokers);
      this.cleanups.push(() => producer.disconnect().catch(() => undefined));
      this.view.say(
        `demo: topic ${this.topic} (${PARTITIONS} partitions), group ${this.group}, backend ${this.flags.backend}, ` +
          `strategy ${this.flags.strategy}, ${this.flags.workers} workers, ${this.flags.messages} messages`,
      );
      await this.startWorkers();
      await this.produceThroughChanges(producer);
      await this.drainAndStop();
      this.view.refresh();
      this.view.stop();
      return verdict({
        sessionTimeout: this.flags.sessionTimeout,
        produced: this.produced,
        deliveries: this.deliveries,
        workers: this.workers,
        rebalances: this.rebalances,
        publications,
        steps: this.steps,
        interrupted: this.interrupted,
      });
    } finally {
      await this.tearDown();
    }
  }

  /** The topic, an observer session watching the group's allocations and members, and the stop signal. */
  private async setUp(): Promise<{ kafka: Kafka; publications: Publication[] }> {
    const { flags } = this;
    const kafka = kafkaClient(flags.brokers, 'kiel-demo');
    const admin: Admin = await connectAdmin(kafka, flags.brokers);
    this.cleanups.push(async () => {
      await admin.deleteTopics({ topics: [this.topic] }).catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
    });
    await admin.createTopics({ topics: [{ topic: this.topic, numPartitions: PARTITIONS }], waitForLeaders: true });
    const observer = createBackend(flags.backend, flags);
    await reach(observer.server, observer.address, () => observer.backend.connect());
    this.cleanups.push(() => observer.backend.close().catch(() => undefined));
    const watched = watchPublications(observer.backend, this.group, () => this.view.since());
    this.cleanups.push(watched.stop);
    // A killed worker's exit is visible at once; its departure from the group only when its session expires.
    this.cleanups.push(
      observer.backend.watchMembers(this.group, (members) => {
        const live = new Set(members.map((m) => m.info.id));
        for (const w of this.workers) {
          if (w.state === 'killed' && w.member !== undefined && !w.expired && !live.has(w.member)) {
            w.expired = true;
            this.step(`${w.name}'s session expired`, true);
          }
        }
      }),
    );
    this.cleanups.push(
      onStopSignal(() => {
        this.interrupted = true;
      }),
    );
    return { kafka, publications: watched.publications };
  }

  /** Starts the first workers and waits until they share every partition. */
  private async startWorkers(): Promise<void> {
    for (let i = 0; i < this.flags.workers; i++) this.addWorker();
    const ready = await waitFor(
      () =>
        this.workers.every((w) => w.state === 'working') &&
        this.workers.reduce((sum, w) => sum + w.owned.length, 0) === PARTITIONS,
      30_000,
      () => this.interrupted,
    );
    if (this.interrupted) throw new Error('interrupted before the workers were ready');
    if (!ready) throw new Error('the workers did not share the 12 partitions within 30 s');
    this.step(`all ${this.flags.workers} workers joined and share the partitions`);
  }

  /**
   * Produces the messages over about 15 s whatever the count, so that the membership changes land while messages
   * flow: at 30 % the first worker stops gracefully, at 55 % the second is killed, at 75 % a new one joins.
   */
  private async produceThroughChanges(producer: Producer): Promise<void> {
    const { flags } = this;
    const script: Array<{ at: number; act: () => void }> = [
      {
        at: 0.3,
        act: () => {
          const w = this.workers[0]!;
          stopGracefully(w, this.view.since());
          this.step(`${w.name} stopped gracefully (SIGTERM)`, true);
        },
      },
      {
        at: 0.55,
        act: () => {
          const w = this.workers[1]!;
          w.state = 'killed';
          w.owned = [];
          w.process.kill('SIGKILL');
          this.step(`${w.name} killed (SIGKILL): its partitions wait for its session to expire`, true);
        },
      },
      {
        at: 0.75,
        act: () => {
          const w = this.addWorker();
          this.step(`${w.name} added`, true);
        },
      },
    ];
    await produceMessages({
      producer,
      topic: this.topic,
      count: flags.messages,
      size: 16,
      compression: 'none',
      rate: Math.max(200, flags.messages / 15),
      stopped: () => this.interrupted,
      onProgress: (n) => {
        this.produced = n;
        while (script.length > 0 && n >= script[0]!.at * flags.messages) script.shift()!.act();
      },
    });
    for (const s of script) s.act();
    this.step(`produced ${this.produced} messages`);
  }

  /** Waits until every message produced was handled, then stops the remaining workers gracefully. */
  private async drainAndStop(): Promise<void> {
    const drained = await waitFor(
      () => this.deliveries.size >= this.produced,
      Math.max(60_000, this.flags.sessionTimeout * 5),
      () => this.interrupted,
    );
    if (!drained && !this.interrupted) this.step('gave up waiting for the remaining messages');
    this.step('stopping the remaining workers gracefully', true);
    for (const w of this.workers) {
      if (w.state === 'working' || w.state === 'starting') stopGracefully(w, this.view.since());
    }
    let giveUp: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      Promise.all(this.workers.map((w) => w.exited)).then(() => true),
      new Promise<boolean>((resolve) => (giveUp = setTimeout(() => resolve(false), 30_000))),
    ]);
    clearTimeout(giveUp);
    if (!stopped) {
      for (const w of this.workers) if (w.process.exitCode === null) w.process.kill('SIGKILL');
    }
  }

  /** Undoes the set-up, newest first; a worker still running is killed. */
  private async tearDown(): Promise<void> {
    for (const w of this.workers)
      if (w.process.exitCode === null && w.process.signalCode === null) w.process.kill('SIGKILL');
    for (const cleanup of this.cleanups.reverse()) await cleanup();
  }

  private addWorker(): Worker {
    const worker = startWorker(`w${this.workers.length + 1}`, {
      group: this.group,
      topic: this.topic,
      flags: this.flags,
      since: () => this.view.since(),
      say: (line) => this.view.say(line),
      delivered: (id, name) => {
        const seen = this.deliveries.get(id);
        if (seen) seen.push(name);
        else this.deliveries.set(id, [name]);
      },
      rebalanced: (report) => this.rebalances.push(report),
    });
    this.workers.push(worker);
    this.view.add(worker);
    return worker;
  }

  private step(what: string, trigger = false): void {
    this.steps.push({ at: this.view.since(), what, trigger });
    this.view.say(what);
  }
}
