// A private etcd for fault injection, run by scripts/stack on free ports with its own state directory: the shared
// etcd of the local stack is never paused or stopped by these tests.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { createServer as createTlsServer } from 'node:tls';
import type { Server as TlsServer } from 'node:tls';
import path from 'node:path';
import { promisify } from 'node:util';
import { Range } from 'etcd3';
import { freePort, STACK_SCRIPT as STACK } from '@kiel/test-kit';
import { rawClient } from './helpers';

const run = promisify(execFile);

export class PrivateEtcd {
  private constructor(
    private readonly dir: string,
    readonly port: number,
    private readonly peerPort: number,
  ) {}

  /** Starts a fresh etcd (empty data directory) on free ports. */
  static async start(): Promise<PrivateEtcd> {
    const dir = mkdtempSync(path.join(tmpdir(), 'kiel-etcd-faults-'));
    const etcd = new PrivateEtcd(dir, await freePort(), await freePort());
    await etcd.stack('start');
    return etcd;
  }

  /**
   * Turns authentication on: a root user, and `app`, whose role may only read and write under `prefix`. Clients
   * without credentials are refused from then on.
   */
  async enableAuth(
    app: { readonly user: string; readonly password: string },
    prefix: string,
    root = { username: 'root', password: 'root-secret' },
  ): Promise<void> {
    const setup = rawClient(this.hosts);
    try {
      await setup.user(root.username).create(root.password);
      await setup.user(root.username).addRole('root');
      const role = await setup.role(`${app.user}-role`).create();
      await role.grant({ permission: 'Readwrite', range: Range.prefix(prefix) });
      await setup.user(app.user).create(app.password);
      await setup.user(app.user).addRole(`${app.user}-role`);
      await setup.auth.authEnable({});
    } finally {
      setup.close();
    }
  }

  /** `host:port` of its client endpoint. */
  get hosts(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** SIGSTOP: the process freezes; connections stay open and nothing answers. */
  pause(): Promise<void> {
    return this.stack('pause');
  }

  resume(): Promise<void> {
    return this.stack('resume');
  }

  stop(): Promise<void> {
    return this.stack('stop');
  }

  /** Starts it again on the same ports and data directory (after `stop`). */
  restart(): Promise<void> {
    return this.stack('start');
  }

  /** Stops it and deletes its data. */
  async dispose(): Promise<void> {
    try {
      await this.stack('stop');
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  private async stack(command: string): Promise<void> {
    await run(process.execPath, [STACK, command, 'etcd'], {
      env: {
        ...process.env,
        KIEL_STACK_DIR: this.dir,
        ETCD_PORT: String(this.port),
        ETCD_PEER_PORT: String(this.peerPort),
      },
      timeout: 60_000,
    });
  }
}

/** TLS material made by openssl for one test run: a CA, a server certificate for 127.0.0.1, a client certificate. */
export interface TestCertificates {
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** Deletes the files. */
  dispose(): void;
}

export async function makeCertificates(): Promise<TestCertificates> {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiel-etcd-tls-'));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir, timeout: 30_000 });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=kiel test CA',
  );
  writeFileSync(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(file('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    await openssl('req', ...ec, '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=kiel test ${who}`);
    await openssl(
      'x509',
      '-req',
      '-in',
      `${who}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${who}.pem`,
      '-days',
      '2',
      '-extfile',
      `${who}.ext`,
    );
  }
  const read = (name: string) => readFileSync(file(name), 'utf8');
  return {
    ca: read('ca.pem'),
    serverCert: read('server.pem'),
    serverKey: read('server.key'),
    clientCert: read('client.pem'),
    clientKey: read('client.key'),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A TLS-terminating proxy (HTTP/2 via ALPN, as gRPC needs) in front of a plain etcd port. */
export class TlsProxy {
  private readonly sockets = new Set<Socket>();
  private readonly server: TlsServer;
  port = 0;

  private constructor(targetPort: number, certificates: TestCertificates, requireClientCertificate: boolean) {
    this.server = createTlsServer(
      {
        cert: certificates.serverCert,
        key: certificates.serverKey,
        ca: certificates.ca,
        ALPNProtocols: ['h2'],
        requestCert: requireClientCertificate,
        rejectUnauthorized: requireClientCertificate,
      },
      (client) => {
        const upstream = connect(targetPort, '127.0.0.1');
        for (const socket of [client, upstream]) {
          this.sockets.add(socket);
          socket.on('close', () => this.sockets.delete(socket));
          socket.on('error', () => undefined);
        }
        client.pipe(upstream);
        upstream.pipe(client);
      },
    );
    this.server.on('tlsClientError', () => undefined);
  }

  static async start(
    targetPort: number,
    certificates: TestCertificates,
    { requireClientCertificate }: { requireClientCertificate: boolean },
  ): Promise<TlsProxy> {
    const proxy = new TlsProxy(targetPort, certificates, requireClientCertificate);
    proxy.port = await new Promise<number>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => resolve((proxy.server.address() as { port: number }).port));
    });
    return proxy;
  }

  /** By name, as the certificate has it (grpc-js warns when TLS is asked for an IP address). */
  get hosts(): string {
    return `localhost:${this.port}`;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
