import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { Command, InvalidArgumentError } from 'commander';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import { parseAllocation } from '@kiel/consumer';
import {
  backendOption,
  brokersOption,
  createBackend,
  etcdOption,
  log,
  onStopSignal,
  portAnswers,
  positiveInt,
  reach,
  UnreachableError,
  zkOption,
} from '../common';
import { table } from '../format';
import { connectAdmin, connectProducer, kafkaClient, produceMessages } from '../kafka';
import { strategyOption } from './work';

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

/** One `kiel work` child process, as the demo sees it. */
interface Worker {
  readonly name: string;
  readonly process: ChildProcess;
  member: string | undefined;
  owned: string[];
  handled: number;
  /** Handled count and time at the last rate sample. */
  sample: { handled: number; at: number };
  rate: number;
  state: 'starting' | 'working' | 'leaving' | 'left' | 'killed' | 'failed';
  exited: Promise<number | null>;
  /** A killed worker whose member entry is gone (its session expired). */
  expired?: boolean;
  /** When SIGTERM was sent and when the process was gone, for the leave's duration. */
  leave?: { sent: number; done?: number; released: number };
  bar?: SingleBar;
}

/** A rebalance as one member reported it. */
export interface RebalanceReport {
  generation: number;
  worker: string;
  /** The member id it reported as, to match the allocation's `members`. */
  member: string;
  assigned: number;
  revoked: number;
  durationMs: number;
  at: number;
  leaving: boolean;
}

/** A published allocation, as the demo saw it appear in the backend. */
export interface Publication {
  generation: number;
  at: number;
  /** The member ids it was computed for. */
  members: readonly string[];
  /** Partitions whose owner changed from the previous publication. */
  moved: number;
}

/** A step of the script, to say what caused each rebalance. */
interface Step {
  at: number;
  what: string;
  /** A membership change the script made (rather than a progress note). */
  trigger: boolean;
}

/** Minimum workers: one to stop gracefully, one to kill. */
function workerCount(text: string): number {
  const n = positiveInt(text);
  if (n < 2) throw new InvalidArgumentError('expected at least 2 (one is stopped gracefully, another is killed).');
  return n;
}

/** Finds the repository's scripts/stack from the built file, however deep it sits. */
function findStackScript(): string | undefined {
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const candidate = path.join(dir, 'scripts', 'stack');
    if (existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  return undefined;
}

/** Starts the local stack through scripts/stack when Kafka or the chosen backend does not answer. */
async function ensureStack(flags: DemoFlags): Promise<void> {
  const backendHosts = flags.backend === 'zk' ? flags.zk : flags.etcd;
  const backendName = flags.backend === 'zk' ? 'ZooKeeper' : 'etcd';
  const answering = async () => ({
    kafka: await portAnswers(flags.brokers[0]!),
    backend: await portAnswers(backendHosts[0]!),
  });
  let state = await answering();
  if (state.kafka && state.backend) return;
  const script = findStackScript();
  if (script) {
    log(
      `the local stack is not running: starting it with ${path.relative(process.cwd(), script)} up (the first run downloads Kafka)`,
    );
    spawnSync(process.execPath, [script, 'up'], { stdio: ['ignore', process.stderr, process.stderr] });
    state = await answering();
  }
  if (!state.kafka)
    throw new UnreachableError('Kafka', flags.brokers.join(','), 'not answering, and the local stack did not start it');
  if (!state.backend)
    throw new UnreachableError(
      backendName,
      backendHosts.join(','),
      'not answering, and the local stack did not start it',
    );
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
      const code = await runDemo(flags);
      if (code !== 0) process.exitCode = code;
    });
}

async function runDemo(flags: DemoFlags): Promise<number> {
  await ensureStack(flags);
  const run = randomBytes(4).toString('hex');
  const topic = `kiel-demo-${run}`;
  const group = `kiel-demo-${run}`;
  const start = performance.now();
  const since = () => performance.now() - start;
  const tty = process.stderr.isTTY === true;
  const kafka = kafkaClient(flags.brokers, 'kiel-demo');
  const admin = await connectAdmin(kafka, flags.brokers);
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
  // The demo watches the group's published allocations itself, to see every generation as it appears.
  const observer = createBackend(flags.backend, flags);
  await reach(observer.server, observer.address, () => observer.backend.connect());
  const publications: Publication[] = [];
  let owners: Map<string, string> | undefined;
  const stopWatching = observer.backend.watchRecord(group, 'allocation', (record) => {
    if (!record) return;
    const allocation = parseAllocation(record.value, record.location);
    if (publications.some((p) => p.generation === allocation.generation)) return;
    const next = new Map<string, string>();
    for (const [member, topics] of Object.entries(allocation.assignment)) {
      for (const [t, ps] of Object.entries(topics)) for (const p of ps as number[]) next.set(`${t}:${p}`, member);
    }
    let moved = 0;
    for (const [id, member] of next) if (owners?.get(id) !== member) moved++;
    owners = next;
    publications.push({ generation: allocation.generation, at: since(), members: allocation.members, moved });
  });

  const workers: Worker[] = [];
  /** Which workers handled each message number. */
  const deliveries = new Map<number, string[]>();
  const rebalances: RebalanceReport[] = [];
  const steps: Step[] = [{ at: 0, what: 'start', trigger: true }];
  let produced = 0;
  let interrupted = false;
  let bars: MultiBar | undefined;
  const say = (line: string) => {
    const stamped = `[${(since() / 1000).toFixed(1).padStart(5)}s] ${line}`;
    if (bars) bars.log(`${stamped}\n`);
    else log(stamped);
  };
  const step = (what: string, trigger = false) => {
    steps.push({ at: since(), what, trigger });
    say(what);
  };
  // A killed worker's exit is visible at once; its departure from the group only when its session expires.
  const stopWatchingMembers = observer.backend.watchMembers(group, (members) => {
    const live = new Set(members.map((m) => m.info.id));
    for (const w of workers) {
      if (w.state === 'killed' && w.member !== undefined && !w.expired && !live.has(w.member)) {
        w.expired = true;
        step(`${w.name}'s session expired`, true);
      }
    }
  });
  const unlisten = onStopSignal(() => {
    interrupted = true;
  });
  const cli = path.join(__dirname, '..', 'cli.js');

  const startWorker = (): Worker => {
    const name = `w${workers.length + 1}`;
    const child = spawn(
      process.execPath,
      [
        cli,
        'work',
        '--group',
        group,
        '--topic',
        topic,
        '--backend',
        flags.backend,
        '--strategy',
        flags.strategy,
        '--format',
        'json',
        '--log-format',
        'json',
        '--session-timeout',
        String(flags.sessionTimeout),
        '--brokers',
        flags.brokers.join(','),
        '--zk',
        flags.zk.join(','),
        '--etcd',
        flags.etcd.join(','),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const worker: Worker = {
      name,
      process: child,
      member: undefined,
      owned: [],
      handled: 0,
      sample: { handled: 0, at: performance.now() },
      rate: 0,
      state: 'starting',
      exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
    };
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const message = JSON.parse(line) as { value: string };
      const id = Number.parseInt(message.value, 10);
      const seen = deliveries.get(id);
      if (seen) seen.push(name);
      else deliveries.set(id, [name]);
      worker.handled++;
    });
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(line) as Record<string, unknown>;
      } catch {
        say(`${name}: ${line}`);
        return;
      }
      switch (event.event) {
        case 'joined':
          worker.member = event.member as string;
          worker.state = 'working';
          say(`${name} (pid ${child.pid}) joined as ${worker.member}`);
          break;
        case 'rebalance':
          worker.owned = event.owned as string[];
          rebalances.push({
            generation: event.generation as number,
            worker: name,
            member: event.member as string,
            assigned: (event.assigned as string[]).length,
            revoked: (event.revoked as string[]).length,
            durationMs: event.durationMs as number,
            at: since(),
            leaving: worker.state === 'leaving',
          });
          break;
        case 'error':
        case 'fenced':
        case 'lost':
          say(`${name}: ${event.event} ${(event.message ?? event.reason ?? '') as string}`);
          break;
      }
    });
    void worker.exited.then((code) => {
      if (worker.leave) worker.leave.done = since();
      if (worker.state === 'killed') return;
      worker.state = code === 0 ? 'left' : 'failed';
      worker.owned = [];
      if (code !== 0) say(`${name} exited with code ${code}`);
    });
    workers.push(worker);
    if (bars) worker.bar = bars.create(flags.messages, 0, { name, info: 'starting' });
    return worker;
  };

  const consumedUnique = () => deliveries.size;
  const refresh = () => {
    const now = performance.now();
    for (const w of workers) {
      const dt = (now - w.sample.at) / 1000;
      if (dt >= 1) {
        w.rate = Math.round((w.handled - w.sample.handled) / dt);
        w.sample = { handled: w.handled, at: now };
      }
      w.bar?.update(w.handled, { name: w.name, info: `${w.owned.length} partitions  ${w.rate} msg/s  ${w.state}` });
    }
  };
  const statusLine = () =>
    `produced ${produced}/${flags.messages}, consumed ${consumedUnique()} | ` +
    workers
      .filter((w) => w.state !== 'left' && w.state !== 'killed' && w.state !== 'failed')
      .map((w) => `${w.name}: ${w.owned.length} partitions, ${w.handled} handled, ${w.rate} msg/s`)
      .join(' | ');

  if (tty) {
    bars = new MultiBar(
      {
        stream: process.stderr,
        format: '{name} |{bar}| {value} handled  {info}',
        hideCursor: true,
        clearOnComplete: false,
        autopadding: true,
      },
      Presets.shades_classic,
    );
  }
  const totalBar = bars?.create(flags.messages, 0, { name: 'all', info: '' });
  const ticker = setInterval(
    () => {
      refresh();
      totalBar?.update(consumedUnique(), { name: 'all', info: `produced ${produced}` });
      if (!tty) say(statusLine());
    },
    tty ? 200 : 2000,
  );

  let exitCode = 1;
  const producer = await connectProducer(kafka, flags.brokers);
  try {
    say(
      `demo: topic ${topic} (${PARTITIONS} partitions), group ${group}, backend ${flags.backend}, strategy ${flags.strategy}, ` +
        `${flags.workers} workers, ${flags.messages} messages`,
    );
    for (let i = 0; i < flags.workers; i++) startWorker();
    const ready = await waitFor(
      () =>
        workers.every((w) => w.state === 'working') &&
        workers.reduce((sum, w) => sum + w.owned.length, 0) === PARTITIONS,
      30_000,
      () => interrupted,
    );
    if (interrupted) throw new Error('interrupted before the workers were ready');
    if (!ready) throw new Error('the workers did not share the 12 partitions within 30 s');
    step(`all ${flags.workers} workers joined and share the partitions`);

    // Production takes about 15 s whatever the count, so the membership changes land while messages flow.
    const rate = Math.max(200, flags.messages / 15);
    const script: Array<{ at: number; act: () => void }> = [
      {
        at: 0.3,
        act: () => {
          const w = workers[0]!;
          w.state = 'leaving';
          w.leave = { sent: since(), released: w.owned.length };
          w.process.kill('SIGTERM');
          step(`${w.name} stopped gracefully (SIGTERM)`, true);
        },
      },
      {
        at: 0.55,
        act: () => {
          const w = workers[1]!;
          w.state = 'killed';
          w.owned = [];
          w.process.kill('SIGKILL');
          step(`${w.name} killed (SIGKILL): its partitions wait for its session to expire`, true);
        },
      },
      {
        at: 0.75,
        act: () => {
          const w = startWorker();
          step(`${w.name} added`, true);
        },
      },
    ];
    await produceMessages({
      producer,
      topic,
      count: flags.messages,
      size: 16,
      compression: 'none',
      rate,
      stopped: () => interrupted,
      onProgress: (n) => {
        produced = n;
        while (script.length > 0 && n >= script[0]!.at * flags.messages) script.shift()!.act();
      },
    });
    for (const s of script) s.act();
    step(`produced ${produced} messages`);
    const drained = await waitFor(
      () => consumedUnique() >= produced,
      Math.max(60_000, flags.sessionTimeout * 5),
      () => interrupted,
    );
    if (!drained && !interrupted) step('gave up waiting for the remaining messages');
    step('stopping the remaining workers gracefully', true);
    for (const w of workers) {
      if (w.state === 'working' || w.state === 'starting') {
        w.state = 'leaving';
        w.leave = { sent: since(), released: w.owned.length };
        w.process.kill('SIGTERM');
      }
    }
    let giveUp: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      Promise.all(workers.map((w) => w.exited)).then(() => true),
      new Promise<boolean>((resolve) => (giveUp = setTimeout(() => resolve(false), 30_000))),
    ]);
    clearTimeout(giveUp);
    if (!stopped) {
      for (const w of workers) if (w.process.exitCode === null) w.process.kill('SIGKILL');
    }
    refresh();
    clearInterval(ticker);
    bars?.stop();
    bars = undefined;
    exitCode = verdict({ flags, produced, deliveries, workers, rebalances, publications, steps, interrupted });
  } finally {
    clearInterval(ticker);
    bars?.stop();
    unlisten();
    stopWatching();
    stopWatchingMembers();
    await observer.backend.close().catch(() => undefined);
    for (const w of workers)
      if (w.process.exitCode === null && w.process.signalCode === null) w.process.kill('SIGKILL');
    await producer.disconnect().catch(() => undefined);
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  }
  return exitCode;
}

/**
 * A generation's row timings from what the workers reported: its longest handoff, and when its last member had
 * applied it, after its publication. Only the generation's own members count, and not while leaving: a worker that
 * joins later applies the allocation it finds as its first, an older generation it is not in, possibly seconds
 * after that generation was published. Both are undefined when no member reported the generation.
 */
export function generationTimings(
  publication: Publication,
  reports: readonly RebalanceReport[],
): { longestHandoffMs?: number; allDoneAfterMs?: number } {
  const members = new Set(publication.members);
  const own = reports.filter((r) => r.generation === publication.generation && !r.leaving && members.has(r.member));
  if (own.length === 0) return {};
  return {
    longestHandoffMs: Math.max(...own.map((r) => r.durationMs)),
    allDoneAfterMs: Math.max(...own.map((r) => r.at)) - publication.at,
  };
}

/** Prints the verdict to stdout and returns the exit code: 0 only when nothing was lost and no duplicate is unexplained. */
function verdict(run: {
  flags: DemoFlags;
  produced: number;
  deliveries: Map<number, string[]>;
  workers: Worker[];
  rebalances: RebalanceReport[];
  publications: Publication[];
  steps: Step[];
  interrupted: boolean;
}): number {
  const killed = new Set(run.workers.filter((w) => w.state === 'killed').map((w) => w.name));
  let lost = 0;
  for (let id = 0; id < run.produced; id++) if (!run.deliveries.has(id)) lost++;
  let duplicates = 0;
  let explained = 0;
  for (const names of run.deliveries.values()) {
    if (names.length < 2) continue;
    duplicates += names.length - 1;
    // A redelivery is expected only when the killed worker handled the message and died before committing it.
    if (names.some((n) => killed.has(n))) explained += names.length - 1;
  }
  const unexplained = duplicates - explained;
  let out = '\nverdict\n';
  out += table(
    ['produced', 'consumed (unique)', 'duplicates', 'lost'],
    [[String(run.produced), String(run.deliveries.size), String(duplicates), String(lost)]],
  );
  out +=
    duplicates === 0
      ? 'no duplicates.\n'
      : `duplicates: ${explained} from the killed worker's uncommitted window (at-least-once redelivery)` +
        (unexplained > 0 ? `, ${unexplained} NOT explained by the kill\n` : ', none elsewhere\n');

  out += '\nworkers\n';
  out += table(
    ['worker', 'member', 'handled', 'end'],
    run.workers.map((w) => [w.name, w.member ?? '-', String(w.handled), w.state]),
  );

  out += '\nrebalances (published allocations)\n';
  // What preceded a publication: every step since the previous one (a dead leader can delay a join's rebalance
  // until its session expires), else the last step before it.
  const sorted = [...run.publications].sort((x, y) => x.generation - y.generation);
  const rows = sorted.map((p, i) => {
    const previous = i > 0 ? sorted[i - 1]!.at : -1;
    const triggers = run.steps.filter((st) => st.trigger);
    const since = triggers.filter((st) => st.at > previous && st.at <= p.at);
    const causes = since.length > 0 ? since : [[...triggers].reverse().find((st) => st.at <= p.at) ?? triggers[0]!];
    const { longestHandoffMs, allDoneAfterMs } = generationTimings(p, run.rebalances);
    return [
      String(p.generation),
      causes.map((c) => c.what.replace(/:.*$/, '')).join('; '),
      `${((p.at - causes[0]!.at) / 1000).toFixed(1)} s`,
      String(p.members.length),
      String(p.moved),
      longestHandoffMs !== undefined ? `${Math.round(longestHandoffMs)} ms` : '-',
      allDoneAfterMs !== undefined ? `${(allDoneAfterMs / 1000).toFixed(1)} s` : '-',
    ];
  });
  out += table(
    ['generation', 'after', 'published after', 'members', 'moved', 'longest handoff', 'all members done'],
    rows,
  );
  const leaves = run.workers.filter((w) => w.leave?.done !== undefined);
  if (leaves.length > 0) {
    out += '\ngraceful leaves (final commit, claims released)\n';
    out += table(
      ['worker', 'partitions released', 'SIGTERM to exit'],
      leaves.map((w) => [w.name, String(w.leave!.released), `${Math.round(w.leave!.done! - w.leave!.sent)} ms`]),
    );
  }
  out +=
    '\nA handoff is revoke, commit and release on the old owner, then claim and fetch on the new one. A "-" means no\n' +
    'member finished that generation on its own: a newer one arrived during the handoff, and both were applied\n' +
    "together. The killed worker's partitions " +
    `move only when its session expires (--session-timeout ${run.flags.sessionTimeout} ms).\n`;

  const ok = lost === 0 && unexplained === 0 && !run.interrupted;
  out += `\n${ok ? 'PASS' : 'FAIL'}: ${lost} lost, ${duplicates} duplicates (${unexplained} unexplained)${run.interrupted ? ', interrupted' : ''}\n`;
  process.stdout.write(out);
  return ok ? 0 : 1;
}
