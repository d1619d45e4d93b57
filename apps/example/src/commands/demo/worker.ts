import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { SingleBar } from 'cli-progress';
import type { RebalanceReport } from './verdict';

/** One `kiel work` child process, as the demo sees it. */
export interface Worker {
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

/** What a worker needs from the demo: where to work, and where to report what it sees. */
export interface WorkerContext {
  group: string;
  topic: string;
  flags: {
    backend: 'zk' | 'etcd';
    strategy: string;
    sessionTimeout: number;
    brokers: string[];
    zk: string[];
    etcd: string[];
  };
  /** Milliseconds since the demo started. */
  since(): number;
  /** A line for the live view. */
  say(line: string): void;
  /** The worker handled message number `id`. */
  delivered(id: number, worker: string): void;
  /** The worker applied a generation. */
  rebalanced(report: RebalanceReport): void;
}

/** The built CLI, which each worker runs as `kiel work`. */
const CLI = path.join(__dirname, '..', '..', 'cli.js');

/** Starts `kiel work` as worker `name` and follows its output: handled messages on stdout, JSON events on stderr. */
export function startWorker(name: string, context: WorkerContext): Worker {
  const { flags } = context;
  const child = spawn(
    process.execPath,
    [
      CLI,
      'work',
      '--group',
      context.group,
      '--topic',
      context.topic,
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
    context.delivered(Number.parseInt(message.value, 10), name);
    worker.handled++;
  });
  readline.createInterface({ input: child.stderr! }).on('line', (line) => {
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(line) as Record<string, unknown>;
    } catch {
      context.say(`${name}: ${line}`);
      return;
    }
    switch (event.event) {
      case 'joined':
        worker.member = event.member as string;
        worker.state = 'working';
        context.say(`${name} (pid ${child.pid}) joined as ${worker.member}`);
        break;
      case 'rebalance':
        worker.owned = event.owned as string[];
        context.rebalanced({
          generation: event.generation as number,
          worker: name,
          member: event.member as string,
          assigned: (event.assigned as string[]).length,
          revoked: (event.revoked as string[]).length,
          durationMs: event.durationMs as number,
          at: context.since(),
          leaving: worker.state === 'leaving',
        });
        break;
      case 'error':
      case 'fenced':
      case 'lost':
        context.say(`${name}: ${event.event} ${(event.message ?? event.reason ?? '') as string}`);
        break;
    }
  });
  void worker.exited.then((code) => {
    if (worker.leave) worker.leave.done = context.since();
    if (worker.state === 'killed') return;
    worker.state = code === 0 ? 'left' : 'failed';
    worker.owned = [];
    if (code !== 0) context.say(`${name} exited with code ${code}`);
  });
  return worker;
}

/** Sends SIGTERM: the worker commits, releases its claims and leaves. */
export function stopGracefully(worker: Worker, since: number): void {
  worker.state = 'leaving';
  worker.leave = { sent: since, released: worker.owned.length };
  worker.process.kill('SIGTERM');
}
