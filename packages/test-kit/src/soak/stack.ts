// The servers a soak runs against and the faults it can put on them, through scripts/stack (a child process per
// command, so that each stack object can have its own ports and state directory).
//   cluster: the cluster stack (scripts/stack --cluster): 3 Kafka brokers and the backend's 3 store nodes. Without a
//            port base of its own it is the cluster of `npm test`'s cluster phase (KIEL_CLUSTER_PORT_BASE, default
//            19100, state in .stack/cluster), reused when it runs and left running then; with one, a private
//            cluster with its state in .stack/soak-<base>/cluster, brought up and down by the soak.
//   single:  one Kafka broker and one store node on private ports (state in .stack/soak-<backend>-<base>).
// The soak kills, stops and freezes these servers: never point it at servers other work depends on.
import { execFile } from 'node:child_process';
import * as crypto from 'node:crypto';
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
  /** Moves each partition's leadership back to its preferred replica (cluster only). */
  electPreferred(topic: string, partitions: number): Promise<void>;
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
    await run(process.execPath, [STACK, ...args], { env: this.env, timeout: 600_000 });
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

  async electPreferred(): Promise<void> {
    // One broker: every partition's only replica leads it already.
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

/** The cluster stack's nodes for one backend: kafka-1..3 and zk-1..3 or etcd-1..3. */
export class ClusterStack implements SoakStack {
  readonly kind = 'cluster' as const;
  readonly brokerNodes = ['kafka-1', 'kafka-2', 'kafka-3'];
  readonly storeNodes: string[];
  /** Whether `up()` started nodes (then `down()` stops them). */
  private started = false;
  private readonly stateDir: string | undefined;

  constructor(
    private readonly backend: 'zk' | 'etcd',
    private readonly portBase: number,
    /** A private cluster (own state directory) rather than the one of `npm test`. */
    privateCluster: boolean,
  ) {
    this.storeNodes = [1, 2, 3].map((i) => `${backend}-${i}`);
    this.stateDir = privateCluster ? path.join(ROOT, '.stack', `soak-${portBase}`) : undefined;
  }

  get brokers(): string[] {
    return [1, 2, 3].map((i) => `127.0.0.1:${this.portBase + i}`);
  }

  storePort(node: string): number {
    const id = Number(node.split('-')[1]);
    return this.portBase + (node.startsWith('zk') ? 20 : 50) + id;
  }

  private get env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      KIEL_CLUSTER_PORT_BASE: String(this.portBase),
      ...(this.stateDir ? { KIEL_STACK_DIR: this.stateDir } : {}),
    };
  }

  private async stack(...args: string[]): Promise<string> {
    const { stdout } = await run(process.execPath, [STACK, ...args], { env: this.env, timeout: 600_000 });
    return stdout.trim();
  }

  async up(): Promise<void> {
    const nodes = [...this.brokerNodes, ...this.storeNodes];
    // Nodes this checkout's scripts/stack runs (with this state directory) show as running.
    const status = await this.stack('status', '--cluster');
    const running = nodes.map((n) => status.split('\n').some((l) => new RegExp(`^${n}\\s+running`).test(l)));
    this.started = !running.every(Boolean);
    // The brokers' cluster id, written once before they start: each `scripts/stack start` is a process of its own,
    // and brokers started at once would each make up a different one.
    const state = path.join(this.stateDir ?? path.join(ROOT, '.stack'), 'cluster');
    const idFile = path.join(state, 'kafka-cluster-id');
    if (!fs.existsSync(idFile)) {
      let id: string;
      do id = crypto.randomBytes(16).toString('base64url');
      while (id.startsWith('-'));
      fs.mkdirSync(state, { recursive: true });
      fs.writeFileSync(idFile, `${id}\n`);
    }
    // All at once: a store node is ready only with a quorum, and the brokers' controllers need each other.
    await Promise.all(nodes.map((n) => this.stack('start', n)));
  }

  async down(): Promise<void> {
    // Whatever a fault left stopped comes back first, so that a reused cluster is whole again.
    await Promise.all(
      [...this.brokerNodes, ...this.storeNodes].map((n) => this.stack('start', n).catch(() => undefined)),
    );
    if (this.started) await this.stack('down', '--cluster');
  }

  async storeLeader(): Promise<string> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const leader = await this.stack('leader', this.backend).catch(() => '');
      if (this.storeNodes.includes(leader)) return leader;
      if (Date.now() > deadline) throw new Error(`no ${this.backend} leader within 30 s (last answer: ${leader})`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  async electPreferred(topic: string, partitions: number): Promise<void> {
    const list = JSON.stringify([{ topic, partitions: Array.from({ length: partitions }, (_, i) => i) }]);
    const script = `require(${JSON.stringify(path.join(ROOT, 'scripts/cluster.js'))}).electLeaders('preferred', ${list}).then(() => process.exit(0), (e) => { console.error(e); process.exit(1); })`;
    await run(process.execPath, ['-e', script], { env: this.env, timeout: 60_000 });
  }

  async kill(node: string): Promise<void> {
    await this.stack('kill', node);
  }

  async stop(node: string): Promise<void> {
    await this.stack('stop', node);
  }

  /** Starts a node again; on a loaded machine a broker can miss scripts/stack's readiness wait, so up to 3 tries. */
  async start(node: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.stack('start', node);
        return;
      } catch (error) {
        if (attempt >= 3) throw error;
        process.stderr.write(`soak: starting ${node} failed (try ${attempt} of 3), trying again\n`);
      }
    }
  }

  async pause(node: string): Promise<void> {
    await this.stack('pause', node);
  }

  async resume(node: string): Promise<void> {
    await this.stack('resume', node);
  }
}
