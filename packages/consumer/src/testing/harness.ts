// The harness of the conformance suite: per-test bookkeeping (backends, groups, subscriptions, all undone after
// each case), bounded waits, and the small helpers the feature files share.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type {
  AllocatorBackend,
  AllocatorBackendEvents,
  BackendError,
  BackendSupports,
  Claim,
  Member,
  MemberInfo,
  RecordName,
  Unsubscribe,
  VersionedRecord,
} from '../backend/types';
import { DEFAULT_TIMEOUTS, type AllocatorBackendSuiteOptions, type SuiteRunner } from './options';

/** How often `eventually` polls. Short, because watches of an in-process backend deliver within milliseconds. */
const POLL_INTERVAL_MS = 10;

/** What every feature file gets: the runner, the harness, the options and the bounds derived from them. */
export interface SuiteContext {
  readonly runner: SuiteRunner;
  readonly t: Harness;
  readonly options: AllocatorBackendSuiteOptions;
  readonly timeouts: Required<NonNullable<AllocatorBackendSuiteOptions['timeouts']>>;
  /** How many sessions race in the concurrency cases. */
  readonly concurrency: number;
  /** The bound on one ordinary case. */
  readonly caseTimeout: number;
}

/**
 * Registers `body` under `title`, or, when something it needs is `missing`, skips it under a title that says what
 * is missing: the runner lists skipped cases, so a missing hook or capability shows in every run.
 */
export function describeUnless(
  describe: SuiteRunner['describe'],
  missing: string | undefined,
  title: string,
  body: () => void,
): void {
  if (missing === undefined) describe(title, body);
  // The one deliberate skip of the suite: listed with its reason, where leaving the cases out would hide them.
  // eslint-disable-next-line no-restricted-syntax
  else describe.skip(`${title} — SKIPPED: ${missing}`, body);
}

/** The context of one suite run, with the defaults applied. */
export function suiteContext(options: AllocatorBackendSuiteOptions): SuiteContext {
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  return {
    runner: options.runner,
    t: new Harness(options, timeouts.watch, options.runner.expect),
    options,
    timeouts,
    concurrency: Math.max(2, options.concurrency ?? 4),
    caseTimeout: timeouts.test,
  };
}

/** The arguments of backend event `E`. */
export type EventArgs<E extends keyof AllocatorBackendEvents> = AllocatorBackendEvents[E];

/** One entry of {@link Harness.sessionEvents}. */
export type SessionEvent =
  | { readonly event: 'connected'; readonly at: number; readonly info: EventArgs<'connected'>[0] }
  | { readonly event: 'disconnected'; readonly at: number; readonly info: EventArgs<'disconnected'>[0] }
  | { readonly event: 'expired'; readonly at: number; readonly info: EventArgs<'expired'>[0] };

/** The watch of one listener: every call it received, and a bounded wait for a state. */
export interface Watched<T> {
  readonly calls: T[];
  readonly last: T | undefined;
  until(what: string, predicate: (state: T) => boolean, timeoutMs?: number): Promise<void>;
  unsubscribe: Unsubscribe;
}

/**
 * Per-test bookkeeping: the backends, groups and subscriptions a test made, all undone in `dispose` (which the
 * suite calls after each case, so one harness serves every case in turn).
 */
export class Harness {
  private readonly backends: AllocatorBackend[] = [];
  private readonly groups: string[] = [];
  private readonly disposers: Array<() => void> = [];
  private readonly errors = new Map<AllocatorBackend, BackendError[]>();

  constructor(
    private readonly options: AllocatorBackendSuiteOptions,
    private readonly watchTimeout: number,
    private readonly expect: SuiteRunner['expect'],
  ) {}

  /**
   * A random group name, cleaned up after the test with `cleanupGroup`; with `cleanup: false` (a group on a
   * private server of the fault hooks, which the shared server's cleanup would not find) it is not.
   */
  group({ cleanup = true }: { cleanup?: boolean } = {}): string {
    const group = `kiel-conformance-${randomUUID()}`;
    if (cleanup) this.groups.push(group);
    return group;
  }

  /**
   * A new backend, not connected: from the suite's factory, or from `factory` (e.g. a fault hook's). Its `error`
   * events are collected (see `errorsOf`), and it is closed after the test.
   */
  async create(
    factory: () => AllocatorBackend | Promise<AllocatorBackend> = this.options.factory,
  ): Promise<AllocatorBackend> {
    const backend = await factory();
    this.backends.push(backend);
    const errors: BackendError[] = [];
    this.errors.set(backend, errors);
    backend.on('error', (error) => errors.push(error));
    return backend;
  }

  /** A new, connected backend, from the suite's factory or from `factory`. */
  async open(factory?: () => AllocatorBackend | Promise<AllocatorBackend>): Promise<AllocatorBackend> {
    const backend = await this.create(factory);
    await this.bounded(backend.connect(), 'connect()');
    return backend;
  }

  async openMany(count: number): Promise<AllocatorBackend[]> {
    return Promise.all(Array.from({ length: count }, () => this.open()));
  }

  /** Every `error` event the backend emitted so far (a live array). */
  errorsOf(backend: AllocatorBackend): BackendError[] {
    return this.errors.get(backend)!;
  }

  supports(backend: AllocatorBackend): BackendSupports {
    return { ...backend.supports, ...this.options.supports };
  }

  /** Records the arguments of every `event` from now on (a live array). */
  events<E extends keyof AllocatorBackendEvents>(backend: AllocatorBackend, event: E): Array<EventArgs<E>> {
    const seen: Array<EventArgs<E>> = [];
    const listener = (...args: EventArgs<E>) => {
      seen.push(args);
    };
    backend.on(event, listener);
    this.onDispose(() => backend.off(event, listener));
    return seen;
  }

  /**
   * A timestamped log (`performance.now()`) of the session events of `backend` from now on: `connected`,
   * `disconnected` and `expired`, in the order they came (a live array).
   */
  sessionEvents(backend: AllocatorBackend): SessionEvent[] {
    const log: SessionEvent[] = [];
    for (const event of ['connected', 'disconnected', 'expired'] as const) {
      const listener = (info: SessionEvent['info']) => {
        log.push({ event, at: performance.now(), info } as SessionEvent);
      };
      backend.on(event, listener);
      this.onDispose(() => backend.off(event, listener));
    }
    return log;
  }

  watchMembers(backend: AllocatorBackend, group: string): Watched<readonly Member[]> {
    return this.watch((listener) => backend.watchMembers(group, listener));
  }

  watchRecord(backend: AllocatorBackend, group: string, name: RecordName): Watched<VersionedRecord | null> {
    return this.watch((listener) => backend.watchRecord(group, name, listener));
  }

  watchClaim(backend: AllocatorBackend, group: string, partition: string): Watched<Claim | null> {
    return this.watch((listener) => backend.watchClaim(group, partition, listener));
  }

  onDispose(dispose: () => void): void {
    this.disposers.push(dispose);
  }

  /** Polls `probe` until it holds; fails with `what` and the time waited when it does not in time. */
  async eventually(what: string, probe: () => boolean, timeoutMs = this.watchTimeout): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!probe()) {
      if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
      await delay(POLL_INTERVAL_MS);
    }
  }

  /** Like `eventually`, for a probe that asks the server: one probe at a time. */
  async eventuallyAsync(what: string, probe: () => Promise<boolean>, timeoutMs = this.watchTimeout): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!(await this.bounded(probe(), `a probe while waiting for ${what}`, timeoutMs))) {
      if (performance.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
      await delay(POLL_INTERVAL_MS * 5);
    }
  }

  /** Awaits `promise`, failing the test with `what` if it takes longer than `timeoutMs` (no call may hang). */
  async bounded<T>(promise: Promise<T>, what: string, timeoutMs = this.watchTimeout): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The error `promise` rejects with; fails the test if it resolves, or does not settle within `timeoutMs`. */
  async rejection(promise: Promise<unknown>, what: string, timeoutMs = this.watchTimeout): Promise<BackendError> {
    const outcome = await this.bounded(
      promise.then(
        (value) => ({ resolved: true as const, value }),
        (error: unknown) => ({ resolved: false as const, error }),
      ),
      what,
      timeoutMs,
    );
    if (outcome.resolved) throw new Error(`${what} resolved (with ${JSON.stringify(outcome.value)}) but must reject`);
    const error = outcome.error as BackendError;
    this.expect(error).toBeInstanceOf(Error);
    this.expect(typeof error.code).toBe('string');
    this.expect(typeof error.retriable).toBe('boolean');
    return error;
  }

  async dispose(): Promise<void> {
    for (const dispose of this.disposers.splice(0)) {
      try {
        dispose();
      } catch {
        // A failing unsubscribe must not keep the backends below open.
      }
    }
    const closing = this.backends.splice(0).map((b) => b.close().catch(() => undefined));
    await Promise.all(closing);
    this.errors.clear();
    const cleanup = this.options.cleanupGroup;
    if (cleanup) await Promise.all(this.groups.map((g) => cleanup(g).catch(() => undefined)));
    this.groups.length = 0;
  }

  private watch<T>(subscribe: (listener: (state: T) => void) => Unsubscribe): Watched<T> {
    const calls: T[] = [];
    const unsubscribe = subscribe((state) => {
      calls.push(state);
    });
    this.onDispose(unsubscribe);
    const watchTimeout = this.watchTimeout;
    return {
      calls,
      get last() {
        return calls[calls.length - 1];
      },
      unsubscribe,
      until: async (what, predicate, timeoutMs = watchTimeout) => {
        const holds = () => calls.length > 0 && predicate(calls[calls.length - 1]);
        try {
          await this.eventually(what, holds, timeoutMs);
        } catch (error) {
          const last = calls.length > 0 ? JSON.stringify(calls[calls.length - 1]) : 'no call at all';
          throw new Error(`${(error as Error).message}; the listener's last state: ${last}`);
        }
      },
    };
  }
}

/** The member info the suite joins with. */
export function memberInfo(id: string): MemberInfo {
  return { id, host: 'conformance.test', pid: 1000 };
}

/** A claim value as the consumer writes one. */
export function claimValue(member: string): string {
  return JSON.stringify({ member, generation: 1 });
}

/** The member ids of a list, in its order. */
export function ids(members: readonly Member[]): string[] {
  return members.map((m) => m.info.id);
}

/** What identifies a member entry: id, order and location. */
export function summary(member: Member): { id: string; order: number; location: string } {
  return { id: member.info.id, order: member.order, location: member.location };
}

/** Whether `list` is exactly the entries of `expected`, in that order. */
export function sameMembers(list: readonly Member[], expected: ReturnType<typeof summary>[]): boolean {
  return JSON.stringify(list.map(summary)) === JSON.stringify(expected);
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
