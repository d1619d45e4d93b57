// A group member in a child process: a backend package's fixture (`test/fixtures/group-member-process.js`, the shared
// member program plus its backend line) spawned with one JSON config. What the child reports on stdout feeds a
// ProcessingLog (its handled batches, with wall-clock intervals comparable with this process's) and this object's
// view of it (assignment, generation, commits).
import { spawn, type ChildProcess } from 'node:child_process';
import type { ProcessingLog } from './group-harness';

/** The child's configuration (see member-program.js). */
export interface ChildMemberConfig {
  readonly brokers: readonly string[];
  readonly group: string;
  readonly topic: string;
  readonly strategy?: string;
  readonly weight?: number;
  /** How the handler works (see member-program.js): `async` (default), `cpu` (a busy loop) or `throws`. */
  readonly handler?: HandlerKind;
  /** `eachBatch` (default) or `eachMessage`, which reports each message with its own interval. */
  readonly mode?: 'eachBatch' | 'eachMessage';
  /** async and throws: a random 0..handleMs ms per batch or message; cpu: handleMs ms of busy loop per message. */
  readonly handleMs?: number;
  /** Holds the handler `ms` (once) at the first message of `partition` from `offset` on: a busy partition. */
  readonly holdAt?: { readonly partition: number; readonly offset: number; readonly ms: number };
  /** Where a partition with no committed offset starts (the consumer's default: earliest). */
  readonly offsetReset?: 'earliest' | 'latest';
  /** How often the consumer refreshes metadata to notice new partitions, ms (the consumer's default: 30 s). */
  readonly metadataMaxAge?: number;
  /** The backend's hosts, namespace (ZooKeeper root path, etcd prefix) and session timeout / lease TTL in ms. */
  readonly hosts: string;
  readonly namespace: string;
  readonly sessionTimeout: number;
  /** Issue 19's options, passed to the consumer as they are. */
  readonly instanceId?: string;
  readonly rebalanceDelay?: number;
  readonly maxMovesPerRebalance?: number;
  /** Issue 19's stall and poison options (poison's onPoison reports POISON). */
  readonly stallTimeout?: number;
  readonly stallAction?: 'report' | 'handoff';
  readonly poison?: { readonly maxAttempts?: number };
  /** The handler hangs for good at a message whose value is HANG. */
  readonly hangOnValue?: boolean;
  /** The process exits (code 3) at a message whose value is EXIT, every time it handles one. */
  readonly exitOnValue?: boolean;
  /** Load, report LOADED, and start only on {@link ChildMember.release} (SIGUSR1). */
  readonly holdStart?: boolean;
}

/** The handler kinds of the member program (see member-program.js). */
export type HandlerKind = 'async' | 'cpu' | 'throws';

/** One member process: spawns the fixture, parses what it reports and feeds the ProcessingLog. */
export class ChildMember {
  readonly child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal) once the process and its pipes are closed. */
  readonly exited: Promise<number | null>;
  assignment: string[] = [];
  generation = 0;
  /** Every assignment it reported, in order, with the wall-clock time this process read it. */
  readonly history: Array<{ generation: number; assignment: string[]; at: number }> = [];
  memberId: string | undefined;
  /** Whether a `holdStart` member has loaded and waits for {@link release}. */
  loaded = false;
  /** When it reported READY (connected and registered), wall clock as read here. */
  readyAt: number | undefined;
  /** Whether it reported a graceful close (SIGTERM). */
  left = false;
  /** Last committed offset per partition, as reported. */
  readonly commits = new Map<number, number>();
  /** Every commit it reported, with the wall-clock time this process read the report. */
  readonly commitLog: Array<{ partition: number; offset: number; at: number }> = [];
  /** Where its handler is held (holdAt), once it reported so. */
  holding: { partition: number; offset: number } | undefined;
  /** Offsets (`partition:offset`) at which the throws handler failed. */
  readonly threw: string[] = [];
  /** The consumer's fenced, unfenced, lost and rejoined events, with the wall-clock time it reported. */
  readonly events: Array<{ event: string; at: number }> = [];
  /** Where its handler hung (HANG), exited (EXIT), stalled, and what onPoison got, as reported. */
  readonly hanging: Array<{ partition: number; offset: number }> = [];
  readonly exiting: Array<{ partition: number; offset: number }> = [];
  readonly stalls: Array<{ partition: number; offset: number; stalledMs: number; at: number }> = [];
  readonly poisoned: Array<{ partition: number; offset: number; attempts: number }> = [];
  /** Messages it reported handled. */
  handledCount = 0;
  /** Output lines it did not understand (a test asserts there are none). */
  readonly unexpected: string[] = [];
  private stderrText = '';

  constructor(
    readonly name: string,
    fixture: string,
    readonly config: ChildMemberConfig,
    private readonly log: ProcessingLog,
  ) {
    this.child = spawn(process.execPath, [fixture, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderrText += chunk.toString()));
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
    let pending = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      const lines = (pending + chunk.toString()).split('\n');
      pending = lines.pop()!;
      for (const line of lines) this.onLine(line);
    });
  }

  get stderr(): string {
    return this.stderrText;
  }

  /** Partition numbers it owns, as last reported. */
  get partitions(): number[] {
    return this.assignment.map((id) => Number(id.split(':').pop()));
  }

  /** The last offset it reported committed for `partition` before wall-clock time `at` (0 if none). */
  committedBefore(partition: number, at: number): number {
    let offset = 0;
    for (const c of this.commitLog) if (c.partition === partition && c.at < at) offset = c.offset;
    return offset;
  }

  /** Starts a `holdStart` member that has loaded (SIGUSR1). */
  release(): void {
    this.assertAlive();
    if (!this.loaded) throw new Error(`member ${this.name} has not loaded yet`);
    this.child.kill('SIGUSR1');
  }

  /** The process id (for SIGSTOP and SIGCONT). */
  get pid(): number {
    return this.child.pid!;
  }

  /** Fails at once, with its stderr, if the process has exited (a missing build, a crash at start). */
  assertAlive(): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      throw new Error(`member ${this.name} exited (${this.child.exitCode ?? this.child.signalCode}): ${this.stderr}`);
    }
  }

  private onLine(line: string): void {
    const [kind, ...rest] = line.split(' ');
    switch (kind) {
      case 'LOADED':
        this.loaded = true;
        break;
      case 'READY':
        this.memberId = rest[0];
        this.readyAt = performance.timeOrigin + performance.now();
        break;
      case 'ASSIGNED':
        this.generation = Number(rest[0]);
        this.assignment = rest[1] ? rest[1].split(',') : [];
        this.history.push({
          generation: this.generation,
          assignment: this.assignment,
          at: performance.timeOrigin + performance.now(),
        });
        break;
      case 'HANDLED': {
        const offsets = rest[3] ? rest[3].split(',').map(Number) : [];
        this.handledCount += offsets.length;
        this.log.record(this.name, Number(rest[0]), offsets, Number(rest[1]), Number(rest[2]));
        break;
      }
      case 'COMMITTED':
        this.commits.set(Number(rest[0]), Number(rest[1]));
        this.commitLog.push({
          partition: Number(rest[0]),
          offset: Number(rest[1]),
          at: performance.timeOrigin + performance.now(),
        });
        break;
      case 'THREW':
        this.threw.push(`${rest[0]}:${rest[1]}`);
        break;
      case 'HOLDING':
        this.holding = { partition: Number(rest[0]), offset: Number(rest[1]) };
        break;
      case 'EVENT':
        this.events.push({ event: rest[0]!, at: Number(rest[1]) });
        break;
      case 'HANGING':
        this.hanging.push({ partition: Number(rest[0]), offset: Number(rest[1]) });
        break;
      case 'EXITING':
        this.exiting.push({ partition: Number(rest[0]), offset: Number(rest[1]) });
        break;
      case 'STALLED':
        this.stalls.push({
          partition: Number(rest[0]),
          offset: Number(rest[1]),
          stalledMs: Number(rest[2]),
          at: performance.timeOrigin + performance.now(),
        });
        break;
      case 'POISON':
        this.poisoned.push({ partition: Number(rest[0]), offset: Number(rest[1]), attempts: Number(rest[2]) });
        break;
      case 'LEFT':
        this.left = true;
        break;
      default:
        if (line.trim() !== '') this.unexpected.push(line);
    }
  }
}
