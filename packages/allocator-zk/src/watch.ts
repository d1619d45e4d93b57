import type { BackendError } from '@kiel/consumer';
import { toBackendError, ZooKeeperBackendError } from './errors';
import type { ZkConnection, ZkWatcher } from './zk';

/** Marks a watch read that raced with a creation and must be read again. */
export const RETRY = Symbol('retry');

export type WatchRead<T> = (connection: ZkConnection, watcher: ZkWatcher) => Promise<T | typeof RETRY>;

export interface SubscriptionOptions<T> {
  readonly location: string;
  readonly listener: (state: T) => void;
  readonly read: WatchRead<T>;
  /** The connection to read on, or undefined when there is no session to read with. */
  readonly connection: () => ZkConnection | undefined;
  readonly retryDelay: () => number;
  readonly report: (error: BackendError) => void;
}

/**
 * One watch* subscription. ZooKeeper watches fire once, so every firing re-reads with a new watch; a firing during
 * a read makes the loop read again, and only the latest read is delivered. One watcher function per subscription,
 * which the client registers at most once per path: re-arming never stacks watchers.
 */
export class Subscription<T> {
  private stopped = false;
  private running = false;
  private again = false;
  private retry: ReturnType<typeof setTimeout> | undefined;
  private readonly watcher: ZkWatcher = () => this.refresh();

  constructor(private readonly options: SubscriptionOptions<T>) {}

  stop(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
  }

  /** The session is gone; the next connect re-arms through refresh(). */
  disarm(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
  }

  refresh(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    void this.loop();
  }

  private async loop(): Promise<void> {
    this.running = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    try {
      do {
        this.again = false;
        const connection = this.options.connection();
        if (!connection) return;
        const state = await this.options.read(connection, this.watcher);
        if (this.stopped) return;
        if (state === RETRY) {
          this.again = true;
          continue;
        }
        if (!this.again) this.deliver(state);
      } while (this.again && !this.stopped);
    } catch (error) {
      if (this.stopped) return;
      const failure = toBackendError(error, 'watch', this.options.location);
      if (failure.code === 'ERR_MALFORMED_RECORD') {
        // The watch is armed (the read succeeded); the next change is read again.
        this.options.report(failure);
      } else if (failure.code !== 'ERR_SESSION_EXPIRED') {
        // Connection trouble heals by itself; the reconnect re-reads too. Retry meanwhile, and report only what
        // will not heal.
        if (!failure.retriable) this.options.report(failure);
        this.retry = setTimeout(() => this.refresh(), this.options.retryDelay());
        this.retry.unref();
      }
    } finally {
      this.running = false;
    }
    if (this.again && !this.stopped) this.refresh();
  }

  private deliver(state: T): void {
    try {
      this.options.listener(state);
    } catch (error) {
      this.options.report(
        new ZooKeeperBackendError(
          'ERR_MALFORMED_RECORD',
          `a watch listener threw on the state it was given: ${error instanceof Error ? error.message : String(error)}`,
          { location: this.options.location, cause: error },
        ),
      );
    }
  }
}
