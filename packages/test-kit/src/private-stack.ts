// A private server of scripts/stack, on free ports with its own state directory, for tests that stop, restart
// or freeze a server: the shared stack stays untouched.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { STACK_SCRIPT as STACK } from './paths';
import { freePort } from './ports';

/** A single-node Kafka of its own (scripts/stack, free ports, own state directory), to stop and restart. */
export class PrivateKafka {
  private constructor(
    private readonly env: NodeJS.ProcessEnv,
    readonly brokers: string[],
    private readonly dir: string,
  ) {}

  /** Starts a single-node Kafka on free ports. */
  static async start(): Promise<PrivateKafka> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiel-private-kafka-'));
    const [kafka, controller, sasl, tls] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const env = {
      ...process.env,
      KIEL_STACK_DIR: dir,
      KAFKA_PORT: String(kafka),
      KAFKA_CONTROLLER_PORT: String(controller),
      KAFKA_SASL_PORT: String(sasl),
      KAFKA_TLS_PORT: String(tls),
    };
    const server = new PrivateKafka(env, [`127.0.0.1:${kafka}`], dir);
    server.run('start', 'kafka');
    return server;
  }

  run(command: 'start' | 'stop' | 'restart' | 'pause' | 'resume', name: 'kafka'): void {
    execFileSync(process.execPath, [STACK, command, name], { env: this.env, stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /** Stops the server and deletes its data. */
  destroy(): void {
    try {
      this.run('stop', 'kafka');
    } finally {
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
