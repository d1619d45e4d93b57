// The one promise layer over node-zookeeper-client. Everything else in this package talks to ZooKeeper through
// ZkConnection, so that every call has a deadline (the client has none), every successful round-trip is counted
// as contact with the server, and a client is taken down without leaving a socket or a reconnect loop behind.
import { performance } from 'node:perf_hooks';
import * as zookeeper from 'node-zookeeper-client';
import { exceptionCode, ZooKeeperBackendError } from './errors';

/** node-zookeeper-client's connection states (lib/ConnectionManager.js), which its public API does not export. */
const CONNECTION_CLOSED = -2;
const CONNECTION_SESSION_EXPIRED = -3;

/** The private parts of the client's ConnectionManager that shutting down cleanly needs. */
interface ConnectionManagerInternals {
  state: number;
  socket?: { destroy(): void; once(event: 'close', listener: () => void): unknown };
  connectTimeoutHandler: ReturnType<typeof setTimeout> | null;
  connect(): void;
  onSocketConnected(): void;
  on(event: 'state', listener: (state: number) => void): unknown;
  removeListener(event: 'state', listener: (state: number) => void): unknown;
}

/** Server answers: a call that ends with one of these still made a round-trip with the server. */
const SERVER_ANSWERS: ReadonlySet<number> = new Set([
  zookeeper.Exception.NO_NODE,
  zookeeper.Exception.NODE_EXISTS,
  zookeeper.Exception.BAD_VERSION,
  zookeeper.Exception.NOT_EMPTY,
  zookeeper.Exception.NO_AUTH,
  zookeeper.Exception.INVALID_ACL,
  zookeeper.Exception.NO_CHILDREN_FOR_EPHEMERALS,
  zookeeper.Exception.BAD_ARGUMENTS,
]);

/** A watcher callback as the client calls it. */
export type ZkWatcher = (event: zookeeper.Event) => void;

/** The result of `getData`. */
export interface ZkData {
  readonly data: Buffer | undefined;
  readonly stat: zookeeper.Stat;
}

/** Options of {@link ZkConnection}. */
export interface ZkConnectionOptions {
  /** Deadline of every call, in milliseconds. */
  readonly operationTimeout: number;
  /**
   * Called after every round-trip the server answered (success or an answer such as NO_NODE), with the
   * `performance.now()` of when the request was sent: the answer proves the session alive then, not when it is read
   * (a process paused after sending reads an old answer on waking).
   */
  readonly onContact: (sentAt: number) => void;
}

/** Formats an 8-byte ZooKeeper session id the way ZooKeeper's own logs do: `0x` and 16 hex digits. */
export function formatSessionId(id: Buffer): string {
  return `0x${id.toString('hex')}`;
}

/**
 * One node-zookeeper-client instance, promise-based. Calls reject with the client's exception when the server
 * answered with an error (callers match NO_NODE, NODE_EXISTS, BAD_VERSION by code), or with an
 * `ERR_BACKEND_TIMEOUT` {@link ZooKeeperBackendError} when no answer came within the operation timeout. A call
 * that timed out may still be executed later by the server: callers of non-idempotent writes re-read to find out.
 */
export class ZkConnection {
  private disposed = false;

  constructor(
    readonly raw: zookeeper.Client,
    private readonly options: ZkConnectionOptions,
  ) {}

  /** The session id, formatted; all zeros before the first connect. */
  get sessionId(): string {
    return formatSessionId(this.raw.getSessionId());
  }

  /** The session timeout granted by the server (the requested one before the first connect). */
  get sessionTimeout(): number {
    return this.raw.getSessionTimeout();
  }

  /** True when `stat` belongs to an ephemeral node created by this connection's session. */
  ownsEphemeral(stat: zookeeper.Stat): boolean {
    return stat.ephemeralOwner.equals(this.raw.getSessionId());
  }

  create(path: string, data: Buffer, acl: zookeeper.ACL[], mode: number): Promise<string> {
    return this.call<string>('create', path, (cb) => this.raw.create(path, data, acl, mode, cb));
  }

  getData(path: string, watcher?: ZkWatcher): Promise<ZkData> {
    return this.call<ZkData>('getData', path, (cb) => {
      const done = (error: Error | zookeeper.Exception | null, data: Buffer, stat: zookeeper.Stat): void =>
        cb(error, { data: data ?? undefined, stat });
      if (watcher) this.raw.getData(path, watcher, done);
      else this.raw.getData(path, done);
    });
  }

  setData(path: string, data: Buffer, version: number): Promise<zookeeper.Stat> {
    return this.call<zookeeper.Stat>('setData', path, (cb) => this.raw.setData(path, data, version, cb));
  }

  /** Resolves with the node's stat, or null when it does not exist (an existence watch is then set). */
  exists(path: string, watcher?: ZkWatcher): Promise<zookeeper.Stat | null> {
    return this.call<zookeeper.Stat | null>('exists', path, (cb) => {
      const done = (error: Error | zookeeper.Exception | null, stat: zookeeper.Stat): void => cb(error, stat ?? null);
      if (watcher) this.raw.exists(path, watcher, done);
      else this.raw.exists(path, done);
    });
  }

  /** The children of `path` and the stat of `path` itself (its `czxid` tells a re-created node from the old one). */
  getChildrenAndStat(path: string, watcher?: ZkWatcher): Promise<{ children: string[]; stat: zookeeper.Stat }> {
    return this.call<{ children: string[]; stat: zookeeper.Stat }>('getChildren', path, (cb) => {
      const done = (error: Error | zookeeper.Exception | null, children: string[], stat: zookeeper.Stat): void =>
        cb(error, { children, stat });
      if (watcher) this.raw.getChildren(path, watcher, done);
      else this.raw.getChildren(path, done);
    });
  }

  getChildren(path: string, watcher?: ZkWatcher): Promise<string[]> {
    return this.call<string[]>('getChildren', path, (cb) => {
      const done = (error: Error | zookeeper.Exception | null, children: string[]): void => cb(error, children);
      if (watcher) this.raw.getChildren(path, watcher, done);
      else this.raw.getChildren(path, done);
    });
  }

  /** Deletes `path` if its version is still `version`. */
  remove(path: string, version: number): Promise<void> {
    return this.call<void>('remove', path, (cb) => this.raw.remove(path, version, (error) => cb(error, undefined)));
  }

  /**
   * Drops the socket without closing the session, so that the client reconnects (to the next server of the
   * ensemble) and resumes the session there if it still lives. Pending calls fail with CONNECTION_LOSS.
   */
  dropSocket(): void {
    if (this.disposed) return;
    (this.raw as unknown as { connectionManager: ConnectionManagerInternals }).connectionManager.socket?.destroy();
  }

  /**
   * Closes the session (so that its ephemeral nodes vanish at once rather than after the session timeout) and
   * takes the client down for good, waiting at most `timeoutMs` for the server to confirm.
   *
   * node-zookeeper-client reconnects on its own after any socket close, and a reconnect scheduled before
   * `close()` still runs afterwards; either would leave a live socket, or even a fresh session, behind. So its
   * reconnect is disabled first, and a socket that still connects is destroyed before it says anything.
   */
  async dispose(timeoutMs: number): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const manager = (this.raw as unknown as { connectionManager: ConnectionManagerInternals }).connectionManager;
    manager.connect = () => undefined;
    manager.onSocketConnected = function (this: ConnectionManagerInternals) {
      if (this.connectTimeoutHandler) clearTimeout(this.connectTimeoutHandler);
      this.socket?.destroy();
    };
    const finished = manager.state === CONNECTION_CLOSED || manager.state === CONNECTION_SESSION_EXPIRED;
    if (!finished) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done(): void {
          clearTimeout(timer);
          manager.removeListener('state', onState);
          resolve();
        }
        function onState(state: number): void {
          if (state === CONNECTION_CLOSED) done();
        }
        manager.on('state', onState);
        this.raw.close();
      });
    }
    if (manager.connectTimeoutHandler) clearTimeout(manager.connectTimeoutHandler);
    manager.socket?.destroy();
  }

  /** Runs one client call with a deadline, counting server answers as contact. */
  private call<T>(
    operation: string,
    path: string,
    start: (callback: (error: Error | zookeeper.Exception | null, value: T) => void) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        reject(
          new ZooKeeperBackendError(
            'ERR_BACKEND_TIMEOUT',
            `ZooKeeper ${operation} got no answer within ${this.options.operationTimeout} ms`,
            { location: path },
          ),
        );
      }, this.options.operationTimeout);
      const finish = (error: unknown, value?: T): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve(value as T);
      };
      const sentAt = performance.now();
      try {
        start((error, value) => {
          const code = exceptionCode(error);
          if (!error || (code !== undefined && SERVER_ANSWERS.has(code))) this.options.onContact(sentAt);
          finish(error, value);
        });
      } catch (error) {
        // The client throws synchronously on bad arguments (an invalid path, data over 1 MiB).
        finish(error);
      }
    });
  }
}
