import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import * as readline from 'node:readline';

/** The built CLI: the tests exercise what `npx kiel` runs. */
export const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
export const BROKERS = process.env.KAFKA_BROKERS ?? '127.0.0.1:9092';
export const ZK = process.env.ZK_HOSTS ?? '127.0.0.1:2181';
export const ETCD = process.env.ETCD_HOSTS ?? '127.0.0.1:2379';

/** A fresh name for a topic or group, so that tests never share state. */
export const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

/** The warnings Node printed in some output: "(node:PID) [DEP0040] DeprecationWarning: ...", "(node:PID) XWarning: ...". */
export function runtimeWarnings(output: string): string[] {
  return output.split('\n').filter((line) => /\(node:\d+\) (\[\w+\] )?\w*Warning\b/.test(line));
}

/** The result of one CLI run. */
export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the CLI to completion (killing it after `timeoutMs`). */
export function runCli(args: readonly string[], timeoutMs = 60_000): Promise<CliResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** A long-running CLI process whose output lines are collected as they come. */
export class CliProcess {
  readonly child: ChildProcess;
  readonly stdoutLines: string[] = [];
  readonly stderrLines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(args: readonly string[]) {
    this.child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    readline.createInterface({ input: this.child.stdout! }).on('line', (l) => this.stdoutLines.push(l));
    readline.createInterface({ input: this.child.stderr! }).on('line', (l) => this.stderrLines.push(l));
    this.exited = new Promise((resolve) => this.child.once('close', (code, signal) => resolve({ code, signal })));
  }

  /** Parsed JSON lines of stderr (`--log-format json`), skipping others. */
  events(): Array<Record<string, unknown>> {
    return this.stderrLines.flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  /** Parsed JSON lines of stdout (`--format json`). */
  messages(): Array<Record<string, unknown>> {
    return this.stdoutLines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** The partitions this member reported owning last. */
  owned(): string[] {
    const rebalances = this.events().filter((e) => e.event === 'rebalance');
    return (rebalances.at(-1)?.owned as string[] | undefined) ?? [];
  }

  kill(signal: NodeJS.Signals): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}
