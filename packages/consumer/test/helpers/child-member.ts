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
  /** Each batch's handler takes a random 0..handleMs ms. */
  readonly handleMs?: number;
  /** The backend's hosts, namespace (ZooKeeper root path, etcd prefix) and session timeout / lease TTL in ms. */
  readonly hosts: string;
  readonly namespace: string;
  readonly sessionTimeout: number;
}

export class ChildMember {
  readonly child: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal) once the process and its pipes are closed. */
  readonly exited: Promise<number | null>;
  assignment: string[] = [];
  generation = 0;
  memberId: string | undefined;
  /** Whether it reported a graceful close (SIGTERM). */
  left = false;
  /** Last committed offset per partition, as reported. */
  readonly commits = new Map<number, number>();
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

  /** Fails at once, with its stderr, if the process has exited (a missing build, a crash at start). */
  assertAlive(): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) {
      throw new Error(`member ${this.name} exited (${this.child.exitCode ?? this.child.signalCode}): ${this.stderr}`);
    }
  }

  private onLine(line: string): void {
    const [kind, ...rest] = line.split(' ');
    switch (kind) {
      case 'READY':
        this.memberId = rest[0];
        break;
      case 'ASSIGNED':
        this.generation = Number(rest[0]);
        this.assignment = rest[1] ? rest[1].split(',') : [];
        break;
      case 'HANDLED': {
        const offsets = rest[3] ? rest[3].split(',').map(Number) : [];
        this.log.record(this.name, Number(rest[0]), offsets, Number(rest[1]), Number(rest[2]));
        break;
      }
      case 'COMMITTED':
        this.commits.set(Number(rest[0]), Number(rest[1]));
        break;
      case 'LEFT':
        this.left = true;
        break;
      default:
        if (line.trim() !== '') this.unexpected.push(line);
    }
  }
}
