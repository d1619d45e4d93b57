// Shared helpers of the integration tests: real ZooKeeper servers only, each test under its own random root path.
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { AllocatorBackend, AllocatorBackendEvents, MemberInfo } from '@kiel/consumer';
import * as zookeeper from 'node-zookeeper-client';
import { freePort, STACK_SCRIPT, TcpProxy, waitFor, type EndToEndBackend, type ProxyConnection } from '@kiel/test-kit';
import { ZooKeeperBackend } from '../src';
import type { ZooKeeperBackendOptions } from '../src';

/** The shared ZooKeeper of the local stack. */
export const ZK_HOSTS = process.env.ZK_HOSTS ?? '127.0.0.1:2181';

/** A fresh root path, so that tests never see each other's nodes. */
export function randomRoot(): string {
  return `/kiel-test-${randomUUID().slice(0, 8)}`;
}

export function memberInfo(id: string, weight?: number): MemberInfo {
  return { id, host: 'test-host', pid: process.pid, ...(weight === undefined ? {} : { weight }) };
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
  private readonly proxies = new Map<AllocatorBackend, ZooKeeperProxy>();

  constructor(private readonly target: { host: string; port: number } = firstHost()) {}

  async backend(options: ZooKeeperBackendOptions | Omit<ZooKeeperBackendOptions, 'hosts'>): Promise<ZooKeeperBackend> {
    const proxy = await ZooKeeperProxy.start(this.target.port, this.target.host);
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
      await waitFor('the backend to see its session expired', () => backend.state === 'expired', 10_000);
    }
  }

  /** The proxy a backend of this expirer talks through. */
  proxyOf(backend: AllocatorBackend): ZooKeeperProxy {
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
    const result = spawnSync(process.execPath, [STACK_SCRIPT, command, 'zk'], {
      env: { ...process.env, KIEL_STACK_DIR: this.dir, ZK_PORT: String(this.port) },
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (result.status !== 0) {
      throw new Error(`scripts/stack ${command} zk failed (${result.status}): ${result.stderr}${result.stdout}`);
    }
  }
}

/**
 * The test kit's TcpProxy, which knows ZooKeeper's framing: on top of cutting, freezing and losing every reply, it
 * can lose the replies from a chosen request on, or answer chosen requests with SESSIONEXPIRED.
 */
export class ZooKeeperProxy extends TcpProxy {
  private dropAfterOp: number | undefined;
  private expiring = 0;
  private expiringOp = 0;
  private readonly streams = new WeakMap<ProxyConnection, ZooKeeperStreams>();

  /** Starts a proxy on a free port in front of a ZooKeeper server (the shared one by default). */
  static override async start(targetPort = firstHost().port, targetHost = firstHost().host): Promise<ZooKeeperProxy> {
    return new ZooKeeperProxy(targetPort, targetHost).listen();
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

  protected override onRequest(chunk: Buffer, connection: ProxyConnection): void {
    this.streamsOf(connection).requests(chunk);
  }

  protected override onReply(chunk: Buffer, connection: ProxyConnection, forward: (data: Buffer) => void): void {
    this.streamsOf(connection).replies(chunk, forward);
  }

  private streamsOf(connection: ProxyConnection): ZooKeeperStreams {
    let streams = this.streams.get(connection);
    if (streams) return streams;
    // The op type of each request in flight, by xid. After the ConnectRequest, a request is xid (int32), type
    // (int32), body.
    const ops = new Map<number, number>();
    const requests = framed((frame, first) => {
      if (first || frame.length < 12) return;
      const op = frame.readInt32BE(8);
      ops.set(frame.readInt32BE(4), op);
      if (op === this.dropAfterOp) {
        this.dropAfterOp = undefined;
        this.loseReplies(true);
      }
    });
    // Replies are passed on frame by frame, so that some can be dropped or rewritten.
    const rewritten: Buffer[] = [];
    let forward: (data: Buffer) => void = () => undefined;
    const replies = framed((frame, first) => {
      if (this.losingReplies) return;
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
        if (--this.expiring === 0) forward(Buffer.concat(rewritten.splice(0)));
      } else {
        forward(frame);
      }
    });
    streams = {
      requests,
      replies: (chunk, forwardNow) => {
        forward = forwardNow;
        replies(chunk);
      },
    };
    this.streams.set(connection, streams);
    return streams;
  }
}

/** One connection's request and reply streams, cut into frames. */
interface ZooKeeperStreams {
  requests(chunk: Buffer): void;
  replies(chunk: Buffer, forward: (data: Buffer) => void): void;
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
