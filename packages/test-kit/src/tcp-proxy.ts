// A TCP proxy in front of a port on loopback, for fault injection between a client and a server. The server keeps
// running whatever the proxy does, so it expires sessions on time. Protocol-agnostic: used in front of Kafka, etcd
// (gRPC over HTTP/2) and ZooKeeper alike; a subclass that knows a protocol can look at the bytes through
// `onRequest` and `onReply` (allocator-zk's tests do, to lose or rewrite the replies to chosen ZooKeeper requests).
import { connect, createServer, type Server, type Socket } from 'node:net';

/** One proxied connection: the client's socket and, once connected, the socket to the server. */
export interface ProxyConnection {
  readonly client: Socket;
  upstream?: Socket;
}

/**
 * A TCP proxy whose traffic a test can interrupt in the ways a network fails:
 * - `cut()` resets every connection and refuses new ones until `restore()` (a server that is gone, or a firewall that
 *   rejects); `reset()` resets every connection but lets the client reconnect at once (a dropped connection);
 * - `freeze()` forwards nothing in either direction but keeps every socket open, and holds new connections
 *   unconnected until `thaw()` (a network partition, or a hung peer as a client sees it);
 * - `loseReplies(true)` passes requests on but discards every reply (the server acts, the client never hears).
 *
 * @example
 * const proxy = await TcpProxy.start(2379);
 * const backend = new EtcdBackend({ hosts: proxy.hosts });
 * proxy.freeze(); // the backend's session runs out on the server
 * proxy.thaw();
 * await proxy.close();
 */
export class TcpProxy {
  private readonly server: Server;
  private readonly connections = new Set<ProxyConnection>();
  private blocked = false;
  private frozen = false;
  private dropReplies = false;
  private held: Array<() => void> = [];
  /** The port it listens on (127.0.0.1); 0 until started. */
  port = 0;

  protected constructor(
    private readonly targetPort: number,
    private readonly targetHost: string,
  ) {
    this.server = createServer((client) => this.accept(client));
  }

  /** Starts a proxy on a free port of 127.0.0.1 in front of `targetHost:targetPort`. */
  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    return new TcpProxy(targetPort, targetHost).listen();
  }

  /** Listens on a free port; what `start` does after constructing. */
  protected async listen(): Promise<this> {
    this.port = await new Promise<number>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as { port: number }).port));
    });
    return this;
  }

  /** `127.0.0.1:<port>`: the connection string a client is given instead of the server's. */
  get hosts(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Whether traffic is cut or frozen now. */
  get interrupted(): boolean {
    return this.blocked || this.frozen;
  }

  /** Resets every connection and refuses new ones until `restore()`. */
  cut(): void {
    this.blocked = true;
    this.reset();
  }

  /** Lets connections through again after `cut()` (clients reconnect by themselves). */
  restore(): void {
    this.blocked = false;
  }

  /** Resets every connection, as a network failure does; new connections go through (unless cut). */
  reset(): void {
    for (const { client, upstream } of this.connections) {
      client.destroy();
      upstream?.destroy();
    }
  }

  /** Stops forwarding in both directions without closing anything; new connections wait unconnected. */
  freeze(): void {
    this.frozen = true;
    for (const { client, upstream } of this.connections) {
      client.pause();
      upstream?.pause();
    }
  }

  /** Forwards again what waited, and connects the connections that came in meanwhile. */
  thaw(): void {
    this.frozen = false;
    for (const { client, upstream } of this.connections) {
      client.resume();
      upstream?.resume();
    }
    const held = this.held;
    this.held = [];
    for (const connectNow of held) connectNow();
  }

  /** While on, the server's replies are discarded: requests are executed, their answers never arrive. */
  loseReplies(on: boolean): void {
    this.dropReplies = on;
  }

  /** Whether replies are being discarded now (`loseReplies`). */
  protected get losingReplies(): boolean {
    return this.dropReplies;
  }

  /** Resets every connection and stops listening. */
  close(): Promise<void> {
    this.cut();
    this.held = [];
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Sees each chunk the client sends; the chunk is passed on unchanged whatever this does. */
  protected onRequest(_chunk: Buffer, _connection: ProxyConnection): void {}

  /** Passes each chunk of the server's reply stream on through `forward` (which drops it while losing replies). */
  protected onReply(chunk: Buffer, _connection: ProxyConnection, forward: (data: Buffer) => void): void {
    forward(chunk);
  }

  private accept(client: Socket): void {
    if (this.blocked) {
      client.destroy();
      return;
    }
    const connection: ProxyConnection = { client };
    this.connections.add(connection);
    client.on('error', () => undefined);
    client.on('close', () => {
      connection.upstream?.destroy();
      this.connections.delete(connection);
    });
    const connectNow = (): void => {
      if (client.destroyed) return;
      const upstream = connect(this.targetPort, this.targetHost);
      connection.upstream = upstream;
      upstream.on('error', () => undefined);
      upstream.on('close', () => client.destroy());
      client.on('data', (chunk: Buffer) => this.onRequest(chunk, connection));
      client.pipe(upstream);
      // Replies are passed on chunk by chunk, so that they can be dropped (or, in a subclass, rewritten).
      upstream.on('data', (chunk: Buffer) =>
        this.onReply(chunk, connection, (data) => {
          if (!this.dropReplies) client.write(data);
        }),
      );
      if (this.frozen) {
        client.pause();
        upstream.pause();
      }
    };
    if (this.frozen) {
      client.pause();
      this.held.push(connectNow);
    } else connectNow();
  }
}
