// Shared helpers of the integration tests: real ZooKeeper servers only, each test under its own random root path.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as netConnect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { AllocatorBackend, AllocatorBackendEvents, MemberInfo } from '@kiel/consumer';
import * as zookeeper from 'node-zookeeper-client';
import type { EndToEndBackend } from '../../consumer/test/helpers/end-to-end';
import { ZooKeeperBackend } from '../src';
import type { ZooKeeperBackendOptions } from '../src';

/** The shared ZooKeeper of the local stack. */
export const ZK_HOSTS = process.env.ZK_HOSTS ?? '127.0.0.1:2181';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A fresh root path, so that tests never see each other's nodes. */
export function randomRoot(): string {
  return `/kiel-test-${randomUUID().slice(0, 8)}`;
}

export function memberInfo(id: string, weight?: number): MemberInfo {
  return { id, host: 'test-host', pid: process.pid, ...(weight === undefined ? {} : { weight }) };
}

/** Polls `check` until it is true, or fails naming `what` after `timeoutMs`. */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Backends made by a test, closed by `closeAll()`. */
export class Backends {
  private readonly made: ZooKeeperBackend[] = [];

  constructor(private readonly defaults: Partial<ZooKeeperBackendOptions> & { hosts?: string }) {}

  create(options: Partial<ZooKeeperBackendOptions> = {}): ZooKeeperBackend {
    const backend = new ZooKeeperBackend({ hosts: ZK_HOSTS, ...this.defaults, ...options } as ZooKeeperBackendOptions);
    // Unhandled error events become warnings; tests that care subscribe themselves.
    backend.on('error', () => undefined);
    this.made.push(backend);
    return backend;
  }

  async open(options: Partial<ZooKeeperBackendOptions> = {}): Promise<ZooKeeperBackend> {
    const backend = this.create(options);
    await backend.connect();
    return backend;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.made.splice(0).map((b) => b.close()));
  }
}

/** Collects the arguments of every emission of `event`. */
export function events<E extends keyof AllocatorBackendEvents>(
  backend: AllocatorBackend,
  event: E,
): Array<AllocatorBackendEvents[E]> {
  const calls: Array<AllocatorBackendEvents[E]> = [];
  backend.on(event, (...args: AllocatorBackendEvents[E]) => calls.push(args));
  return calls;
}

/** A raw client, connected, for setting up and inspecting what the backend cannot do itself. */
export function rawClient(hosts: string = ZK_HOSTS, options: Record<string, unknown> = {}): Promise<zookeeper.Client> {
  return new Promise((resolve, reject) => {
    const client = zookeeper.createClient(hosts, { sessionTimeout: 4000, retries: 0, ...options });
    const timer = setTimeout(() => {
      client.close();
      reject(new Error(`no ZooKeeper session with ${hosts} within 10 s`));
    }, 10_000);
    client.once('connected', () => {
      clearTimeout(timer);
      resolve(client);
    });
    client.connect();
  });
}

export const zkCall = <T>(fn: (cb: (err: Error | zookeeper.Exception | null, value: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));

/** Closes a raw client and waits until the server has ended its session. */
export function closeRaw(client: zookeeper.Client): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 3000);
    client.once('disconnected', () => {
      clearTimeout(timer);
      resolve();
    });
    client.close();
  });
}

/** Deletes `root` and everything under it. */
export async function removeTree(root: string, hosts: string = ZK_HOSTS, auth?: string): Promise<void> {
  const client = await rawClient(hosts);
  if (auth) client.addAuthInfo('digest', Buffer.from(auth));
  const remove = async (node: string): Promise<void> => {
    let children: string[];
    try {
      children = await zkCall<string[]>((cb) => client.getChildren(node, cb));
    } catch (err) {
      if ((err as zookeeper.Exception).code === zookeeper.Exception.NO_NODE) return;
      throw err;
    }
    await Promise.all(children.map((child) => remove(`${node}/${child}`)));
    await zkCall<void>((cb) => client.remove(node, (err) => cb(err, undefined))).catch((err) => {
      if ((err as zookeeper.Exception).code !== zookeeper.Exception.NO_NODE) throw err;
    });
  };
  try {
    await remove(root);
  } finally {
    await closeRaw(client);
  }
}

/** Host and port of the first server of a connection string. */
export function firstHost(hosts: string = ZK_HOSTS): { host: string; port: number } {
  const [host = '127.0.0.1', port = '2181'] = hosts.split(',')[0].trim().split(':');
  return { host, port: Number(port) };
}

/**
 * Makes backends whose traffic goes through a proxy each, so that their sessions can be expired for real:
 * `expire` freezes the backend's proxy, lets a second client attach to the same session (id and password) straight
 * to the server and close it, then thaws. The server ends the session as it ends a silent one; the frozen backend
 * cannot take its session back meanwhile (without the freeze, its client reconnects at once and races the close).
 */
export class SessionExpirer {
  private readonly proxies = new Map<AllocatorBackend, FreezableProxy>();

  constructor(private readonly target: { host: string; port: number } = firstHost()) {}

  async backend(options: ZooKeeperBackendOptions | Omit<ZooKeeperBackendOptions, 'hosts'>): Promise<ZooKeeperBackend> {
    const proxy = new FreezableProxy(this.target);
    await proxy.start();
    const backend = new ZooKeeperBackend({ ...options, hosts: proxy.hosts });
    this.proxies.set(backend, proxy);
    return backend;
  }

  /** Ends the backend's session; waits until it sees that, unless `waitForExpiry` is false. */
  async expire(backend: AllocatorBackend, { waitForExpiry = true }: { waitForExpiry?: boolean } = {}): Promise<void> {
    const proxy = this.proxies.get(backend);
    const raw = (backend as unknown as { connection?: { raw: zookeeper.Client } }).connection?.raw;
    if (!proxy || !raw) throw new Error('not a connected backend of this SessionExpirer');
    const credentials = {
      sessionId: raw.getSessionId(),
      sessionPassword: raw.getSessionPassword(),
      sessionTimeout: raw.getSessionTimeout(),
    };
    proxy.freeze();
    try {
      const thief = await rawClient(`${this.target.host}:${this.target.port}`, credentials);
      await closeRaw(thief);
    } finally {
      proxy.thaw();
    }
    if (waitForExpiry) {
      await eventually('the backend to see its session expired', () => backend.state === 'expired', 10_000);
    }
  }

  /** The proxy a backend of this expirer talks through. */
  proxyOf(backend: AllocatorBackend): FreezableProxy {
    const proxy = this.proxies.get(backend);
    if (!proxy) throw new Error('not a backend of this SessionExpirer');
    return proxy;
  }

  async close(): Promise<void> {
    await Promise.all([...this.proxies.values()].map((proxy) => proxy.close()));
    this.proxies.clear();
  }
}

/** A private ZooKeeper on its own port and state directory, for fault injection (never the shared one). */
export class PrivateZooKeeper {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'kiel-zk-'));
  port = 0;

  get hosts(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    this.stack('start');
  }

  stop(): void {
    this.stack('stop');
  }

  pause(): void {
    this.stack('pause');
  }

  resume(): void {
    this.stack('resume');
  }

  /** Stops the server and deletes its state. */
  destroy(): void {
    if (this.port !== 0) this.stack('stop');
    rmSync(this.dir, { recursive: true, force: true });
  }

  private stack(command: string): void {
    const script = path.resolve(__dirname, '../../../scripts/stack');
    const result = spawnSync(process.execPath, [script, command, 'zk'], {
      env: { ...process.env, KIEL_STACK_DIR: this.dir, ZK_PORT: String(this.port) },
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (result.status !== 0) {
      throw new Error(`scripts/stack ${command} zk failed (${result.status}): ${result.stderr}${result.stdout}`);
    }
  }
}

/** A TCP port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/**
 * A TCP proxy in front of a server that can freeze traffic: while frozen it reads nothing and forwards nothing,
 * in either direction, but keeps every socket open, as a network partition or a hung peer looks to a client.
 * The server on the other side keeps running, so it expires sessions on time.
 */
export class FreezableProxy {
  private readonly server = createServer((client) => this.accept(client));
  private readonly pairs = new Set<{ client: Socket; upstream?: Socket }>();
  private frozen = false;
  private dropReplies = false;
  private dropAfterOp: number | undefined;
  private held: Array<() => void> = [];
  private expiring = 0;
  private expiringOp = 0;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  get hosts(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  freeze(): void {
    this.frozen = true;
    for (const { client, upstream } of this.pairs) {
      client.pause();
      upstream?.pause();
    }
  }

  thaw(): void {
    this.frozen = false;
    for (const { client, upstream } of this.pairs) {
      client.resume();
      upstream?.resume();
    }
    const held = this.held;
    this.held = [];
    for (const connect of held) connect();
  }

  /** While on, the server's replies are discarded: requests are executed, their answers never arrive. */
  loseReplies(on: boolean): void {
    this.dropReplies = on;
  }

  /**
   * Starts losing replies as soon as the client sends a request of ZooKeeper op type `op` (1 = create): that
   * request reaches the server and is executed, but neither its answer nor any later one arrives.
   */
  loseRepliesFrom(op: number): void {
    this.dropAfterOp = op;
  }

  /**
   * The server's next `count` replies to requests of ZooKeeper op type `op` (4 = getData) come back as
   * SESSIONEXPIRED (-112), all in one chunk once the last of them is in: what a client sees when its session is
   * closed under several requests in flight.
   */
  expireReplies(count: number, op: number): void {
    this.expiring = count;
    this.expiringOp = op;
  }

  /** Cuts every connection, as a network failure does; the client reconnects through the proxy. */
  cut(): void {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream?.destroy();
    }
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream?.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    const pair: { client: Socket; upstream?: Socket } = { client };
    this.pairs.add(pair);
    client.on('error', () => undefined);
    client.on('close', () => {
      pair.upstream?.destroy();
      this.pairs.delete(pair);
    });
    const connect = (): void => {
      if (client.destroyed) return;
      const upstream = netConnect(this.target.port, this.target.host);
      pair.upstream = upstream;
      upstream.on('error', () => undefined);
      upstream.on('close', () => client.destroy());
      // The op type of each request in flight, by xid. After the ConnectRequest, a request is xid (int32), type
      // (int32), body.
      const ops = new Map<number, number>();
      client.on(
        'data',
        framed((frame, first) => {
          if (first || frame.length < 12) return;
          const op = frame.readInt32BE(8);
          ops.set(frame.readInt32BE(4), op);
          if (op === this.dropAfterOp) {
            this.dropAfterOp = undefined;
            this.dropReplies = true;
          }
        }),
      );
      client.pipe(upstream);
      // Replies are passed on frame by frame, so that some can be dropped or rewritten.
      const rewritten: Buffer[] = [];
      upstream.on(
        'data',
        framed((frame, first) => {
          if (this.dropReplies) return;
          // After the ConnectResponse, a reply is xid (int32), zxid (int64), err (int32), body; xid > 0: a request's.
          const xid = first ? 0 : frame.readInt32BE(4);
          const op = ops.get(xid);
          ops.delete(xid);
          if (this.expiring > 0 && xid > 0 && op === this.expiringOp) {
            const expired = Buffer.alloc(20);
            expired.writeInt32BE(16, 0);
            frame.copy(expired, 4, 4, 16);
            expired.writeInt32BE(-112, 16);
            rewritten.push(expired);
            if (--this.expiring === 0) client.write(Buffer.concat(rewritten.splice(0)));
          } else {
            client.write(frame);
          }
        }),
      );
    };
    if (this.frozen) {
      client.pause();
      this.held.push(connect);
    } else {
      connect();
    }
  }
}

/** A 'data' handler that cuts a ZooKeeper stream into its length-prefixed frames; the first is the connect one. */
function framed(onFrame: (frame: Buffer, first: boolean) => void): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  let first = true;
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 4 && pending.length >= 4 + pending.readInt32BE(0)) {
      const frame = pending.subarray(0, 4 + pending.readInt32BE(0));
      pending = pending.subarray(frame.length);
      onFrame(frame, first);
      first = false;
    }
  };
}

/**
 * This package's side of the multi-process scenarios of @kiel/consumer's test helpers (end to end, safety under
 * real handlers): the shared ZooKeeper and the member fixture.
 */
export const endToEndBackend: EndToEndBackend = {
  name: 'ZooKeeperBackend',
  fixture: path.join(__dirname, 'fixtures/group-member-process.js'),
  hosts: ZK_HOSTS,
  sessionTimeout: 2_000,
  newNamespace: randomRoot,
  removeNamespaces: async (roots) => {
    for (const root of roots) await removeTree(root);
  },
};
