// A TCP proxy in front of a port on loopback, for fault injection between a client and a server: `cut()` resets
// every connection and refuses new ones (a server that is gone, or a firewall that rejects), `freeze()` forwards
// nothing in either direction but keeps every socket open and accepts new ones without connecting them (a network
// partition or a hung peer as a client sees it). The server keeps running either way, so it expires sessions on
// time. Protocol-agnostic: used in front of etcd (gRPC over HTTP/2) and ZooKeeper alike.
import { connect, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private readonly pairs = new Set<{ client: Socket; upstream?: Socket }>();
  private readonly server: Server;
  private blocked = false;
  private frozen = false;
  private held: Array<() => void> = [];
  port = 0;

  private constructor(
    private readonly targetPort: number,
    private readonly targetHost: string,
  ) {
    this.server = createServer((client) => this.accept(client));
  }

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort, targetHost);
    proxy.port = await new Promise<number>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => resolve((proxy.server.address() as { port: number }).port));
    });
    return proxy;
  }

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
    for (const socket of this.sockets) socket.destroy();
  }

  /** Lets connections through again after `cut()` (clients reconnect by themselves). */
  restore(): void {
    this.blocked = false;
  }

  /** Stops forwarding in both directions without closing anything; new connections wait unconnected. */
  freeze(): void {
    this.frozen = true;
    for (const { client, upstream } of this.pairs) {
      client.pause();
      upstream?.pause();
    }
  }

  /** Forwards again what waited, and connects the connections that came in meanwhile. */
  thaw(): void {
    this.frozen = false;
    for (const { client, upstream } of this.pairs) {
      client.resume();
      upstream?.resume();
    }
    const held = this.held;
    this.held = [];
    for (const connectNow of held) connectNow();
  }

  close(): Promise<void> {
    this.cut();
    this.held = [];
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.blocked) {
      client.destroy();
      return;
    }
    const pair: { client: Socket; upstream?: Socket } = { client };
    this.pairs.add(pair);
    this.track(client);
    client.on('close', () => {
      pair.upstream?.destroy();
      this.pairs.delete(pair);
    });
    const connectNow = (): void => {
      if (client.destroyed) return;
      const upstream = connect(this.targetPort, this.targetHost);
      pair.upstream = upstream;
      this.track(upstream);
      upstream.on('close', () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
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

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
  }
}
