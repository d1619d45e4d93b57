// The servers a soak runs against and the faults it can put on them. The soak always brings up a stack of its own
// (state under .stack/soak-*, ports from a base of its own), never the shared one, because it kills and stops
// servers. `single`: one Kafka broker and one store node (scripts/stack with private ports).
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../../../..');
const STACK = path.join(ROOT, 'scripts/stack');

export interface SoakStack {
  readonly kind: 'single' | 'cluster';
  /** Kafka bootstrap servers. */
  readonly brokers: string[];
  /** Node names of the brokers and of the store (`kafka`, `zk`; or `kafka-1`, ..., `zk-3`). */
  readonly brokerNodes: string[];
  readonly storeNodes: string[];
  /** Client port of a store node (the soak puts its per-member proxies in front of it). */
  storePort(node: string): number;
  up(): Promise<void>;
  down(): Promise<void>;
  /** The store node that leads now. */
  storeLeader(): Promise<string>;
  /** SIGKILL; returns once the process is gone. */
  kill(node: string): Promise<void>;
  /** Graceful stop (SIGTERM: a broker moves its leaderships away first). */
  stop(node: string): Promise<void>;
  /** Starts a stopped or killed node again; returns once it answers. */
  start(node: string): Promise<void>;
  pause(node: string): Promise<void>;
  resume(node: string): Promise<void>;
}

/** One broker and one store node on ports from `portBase` (+0..3 Kafka, +10 ZooKeeper, +20/21 etcd). */
export class SingleStack implements SoakStack {
  readonly kind = 'single' as const;
  readonly brokerNodes = ['kafka'];
  readonly storeNodes: string[];
  readonly dir: string;

  constructor(
    private readonly backend: 'zk' | 'etcd',
    private readonly portBase: number,
  ) {
    this.storeNodes = [backend];
    this.dir = path.join(ROOT, '.stack', `soak-${backend}-${portBase}`);
  }

  get brokers(): string[] {
    return [`127.0.0.1:${this.portBase}`];
  }

  storePort(): number {
    return this.backend === 'zk' ? this.portBase + 10 : this.portBase + 20;
  }

  private get env(): NodeJS.ProcessEnv {
    const b = this.portBase;
    return {
      ...process.env,
      KIEL_STACK_DIR: this.dir,
      KAFKA_PORT: String(b),
      KAFKA_CONTROLLER_PORT: String(b + 1),
      KAFKA_SASL_PORT: String(b + 2),
      KAFKA_TLS_PORT: String(b + 3),
      ZK_PORT: String(b + 10),
      ETCD_PORT: String(b + 20),
      ETCD_PEER_PORT: String(b + 21),
    };
  }

  private async stack(...args: string[]): Promise<void> {
    await run(process.execPath, [STACK, ...args], { env: this.env, timeout: 180_000 });
  }

  async up(): Promise<void> {
    fs.rmSync(this.dir, { recursive: true, force: true });
    await Promise.all([this.stack('start', 'kafka'), this.stack('start', this.backend)]);
  }

  async down(): Promise<void> {
    await Promise.all([this.stack('stop', 'kafka'), this.stack('stop', this.backend)]);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  async storeLeader(): Promise<string> {
    return this.backend;
  }

  async kill(node: string): Promise<void> {
    const pid = Number(fs.readFileSync(path.join(this.dir, `${node}.pid`), 'utf8').trim());
    try {
      process.kill(pid, 'SIGCONT');
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    while (fs.existsSync(`/proc/${pid}`) && !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z')) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  stop(node: string): Promise<void> {
    return this.stack('stop', node);
  }

  start(node: string): Promise<void> {
    return this.stack('start', node);
  }

  pause(node: string): Promise<void> {
    return this.stack('pause', node);
  }

  resume(node: string): Promise<void> {
    return this.stack('resume', node);
  }
}
