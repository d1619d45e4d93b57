// A private server of scripts/stack, on free ports with its own state directory, for tests that stop, restart
// or freeze a server: the shared stack stays untouched.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const STACK = path.join(__dirname, '../../../../scripts/stack');

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

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
