import { EventEmitter } from 'node:events';
import type { AllocationRecord, AllocatorBackend, Claim, ControlRecord, Member, Unsubscribe } from '@kiel/consumer';
import { firstLine } from '../common';
import {
  GroupInspector,
  parseAllocationText,
  parseClaimValue,
  parseControlRecord,
  type GroupSnapshot,
} from '../inspect';
import { judgeDeparture, RebalanceTimeline, type TimelineEntry } from './timeline';

/**
 * A member's health as the dashboard shows it:
 * - `ok`: live, allocated, holds the claims of all its partitions, and keeps up (or has nothing to do);
 * - `joining`: live, not in the published allocation yet;
 * - `handing off`: allocated, but some of its partitions are not claimed by it yet;
 * - `stalled`: live and allocated, its partitions have lag, and it committed nothing for `stallMs`;
 * - `waiting`: a named member whose entry is gone, and whose partitions the leader keeps for it (`rebalanceDelay`);
 *   they are idle until it comes back or the delay runs out (the member's `waitingMs` says how long);
 * - `gone`: in the published allocation, but its entry is gone (left or expired; a new generation follows).
 */
export type Health = 'ok' | 'joining' | 'handing off' | 'stalled' | 'waiting' | 'gone';

/** Everything the page shows, pushed on every change. */
export interface DashboardState {
  group: string;
  backend: string;
  /** `Date.now()` of this state. */
  at: number;
  /** The last snapshot read (null until the first one). */
  snapshot: GroupSnapshot | null;
  health: Record<string, Health>;
  /** How each departed member went, as far as the dashboard saw. */
  departures: Record<string, 'left' | 'expired'>;
  timeline: TimelineEntry[];
  /** Messages per second committed per member, one point per interval, newest last. */
  throughput: { at: number[]; members: Record<string, Array<number | null>> };
  /** The last error reading Kafka or the backend; cleared by the next good read. */
  error: string | null;
}

/** Options of a {@link GroupMonitor}. */
export interface GroupMonitorOptions {
  /** How often offsets and watermarks are read, in ms. Default 1 000. */
  intervalMs?: number;
  /** Throughput points kept. Default 180. */
  historyPoints?: number;
}

/**
 * Watches one group for the dashboard: member set, allocation record and each partition's claim through the
 * backend's watches (so a rebalance shows within milliseconds), committed offsets and high watermarks from Kafka
 * every interval. Never writes anything anywhere: it neither joins the group nor commits.
 */
export class GroupMonitor extends EventEmitter<{ state: [DashboardState] }> {
  private readonly inspector: GroupInspector;
  private readonly timeline = new RebalanceTimeline();
  private readonly intervalMs: number;
  private readonly historyPoints: number;
  private members: readonly Member[] = [];
  private record: AllocationRecord | null = null;
  private control: ControlRecord | null = null;
  private readonly claims = new Map<string, Claim>();
  private readonly claimWatches = new Map<string, Unsubscribe>();
  /** Members judged expired, and when their entry went: a commit of theirs seen later corrects it to `left`. */
  private readonly recentlyExpired = new Map<string, number>();
  private unsubscribes: Unsubscribe[] = [];
  private timer: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private again = false;
  private closed = false;
  private readonly startedAt = Date.now();
  private samples: Array<{ at: number; totals: Map<string, number> }> = [];
  private readonly throughput: DashboardState['throughput'] = { at: [], members: {} };
  private lastSampleAt = 0;
  private current: DashboardState;

  constructor(
    private readonly backend: AllocatorBackend,
    private readonly backendName: string,
    readonly group: string,
    brokers: readonly string[],
    options: GroupMonitorOptions = {},
  ) {
    super();
    this.inspector = new GroupInspector(backend, group, brokers);
    this.intervalMs = options.intervalMs ?? 1_000;
    this.historyPoints = options.historyPoints ?? 180;
    this.current = this.state(null, null);
  }

  /** The latest state. */
  get latest(): DashboardState {
    return this.current;
  }

  /** Connects to Kafka and starts watching (the backend must be connected). */
  async start(): Promise<void> {
    await this.inspector.connectKafka();
    this.unsubscribes.push(
      this.backend.watchMembers(this.group, (members) => void this.onMembers(members)),
      this.backend.watchRecord(this.group, 'allocation', (stored) => {
        if (!stored) return;
        try {
          this.onAllocation(parseAllocationText(stored.value, stored.location));
        } catch (err) {
          this.fail(err);
        }
      }),
      // A freeze or unfreeze (`kiel allocation freeze`) shows at once.
      this.backend.watchRecord(this.group, 'control', (stored) => {
        try {
          this.control = parseControlRecord(stored);
          this.schedule();
        } catch (err) {
          this.fail(err);
        }
      }),
    );
    this.timer = setInterval(() => this.schedule(0), this.intervalMs);
    this.schedule(0);
  }

  /** Stops watching and closes the Kafka connections (not the backend). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.debounce);
    for (const u of this.unsubscribes) u();
    for (const u of this.claimWatches.values()) u();
    this.claimWatches.clear();
    await this.refreshing?.catch(() => undefined);
    this.inspector.close();
  }

  private async onMembers(members: readonly Member[]): Promise<void> {
    const before = new Set(this.members.map((m) => m.info.id));
    this.members = members;
    const now = new Set(members.map((m) => m.info.id));
    const gone = [...before].filter((id) => !now.has(id));
    if (gone.length > 0) {
      const goneAt = Date.now();
      // A fresh read after the entry went: a leave notice (written before the entry goes), or claims that outlive
      // the entry, mean a graceful leave.
      try {
        const [claims, control] = await Promise.all([
          this.backend.claims(this.group),
          this.backend.readRecord(this.group, 'control').then(parseControlRecord),
        ]);
        for (const id of gone) {
          const lastCommit = this.inspector.lastCommitOf(id);
          const evidence = {
            noticed: control?.departed?.[id] !== undefined || control?.leaving?.[id] !== undefined,
            claimsStillHeld: [...claims.values()].filter((c) => parseClaimValue(c)?.member === id).length,
            lastCommitBeforeGoneMs: lastCommit === undefined ? null : goneAt - lastCommit,
            committedAfterGone: false,
            aliveWithinMs: this.intervalMs + 1_000,
          };
          this.timeline.memberGone(id, judgeDeparture(evidence));
          if (this.timeline.departure(id) === 'expired') this.recentlyExpired.set(id, goneAt);
        }
      } catch (err) {
        this.fail(err);
      }
    }
    this.schedule();
  }

  private onAllocation(record: AllocationRecord): void {
    if (this.record && record.generation <= this.record.generation) return;
    this.record = record;
    this.timeline.allocation(record, Date.now());
    const wanted = new Set(record.partitions);
    for (const [p, unsubscribe] of this.claimWatches) {
      if (!wanted.has(p)) {
        unsubscribe();
        this.claimWatches.delete(p);
        this.claims.delete(p);
      }
    }
    for (const p of wanted) {
      if (this.claimWatches.has(p)) continue;
      this.claimWatches.set(
        p,
        this.backend.watchClaim(this.group, p, (claim) => {
          if (claim) this.claims.set(p, claim);
          else this.claims.delete(p);
          this.observeClaims();
          this.schedule();
        }),
      );
    }
    this.observeClaims();
    this.schedule();
  }

  private observeClaims(): void {
    const holders = new Map<string, string>();
    for (const [p, c] of this.claims) {
      const value = parseClaimValue(c);
      if (value) holders.set(p, value.member);
    }
    this.timeline.observeClaims(holders, Date.now());
  }

  /** Refreshes soon: changes seen through watches arrive in bursts, one read serves them all. */
  private schedule(delayMs = 30): void {
    if (this.closed) return;
    if (this.debounce && delayMs > 0) return;
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      void this.refresh();
    }, delayMs);
  }

  private refresh(): Promise<void> {
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        const snapshot = await this.inspector.build(this.record, this.members, this.claims, this.control);
        for (const [id, goneAt] of this.recentlyExpired) {
          if ((this.inspector.lastCommitOf(id) ?? 0) > goneAt) this.timeline.memberGone(id, 'left');
          if ((this.inspector.lastCommitOf(id) ?? 0) > goneAt || snapshot.at - goneAt > 10_000) {
            this.recentlyExpired.delete(id);
          }
        }
        this.sample(snapshot);
        this.publish(this.state(snapshot, null));
      } catch (err) {
        this.fail(err);
      } finally {
        this.refreshing = undefined;
        if (this.again && !this.closed) {
          this.again = false;
          this.schedule();
        }
      }
    })();
    return this.refreshing;
  }

  private fail(err: unknown): void {
    this.publish(this.state(this.current.snapshot, firstLine(err)));
  }

  private publish(state: DashboardState): void {
    if (this.closed) return;
    this.current = state;
    this.emit('state', state);
  }

  /** One throughput point per interval: committed messages per second over the last three intervals. */
  private sample(snapshot: GroupSnapshot): void {
    if (snapshot.at - this.lastSampleAt < this.intervalMs * 0.9) return;
    this.lastSampleAt = snapshot.at;
    const totals = new Map(snapshot.members.map((m) => [m.id, m.committedTotal]));
    this.samples.push({ at: snapshot.at, totals });
    if (this.samples.length > 4) this.samples.shift();
    const oldest = this.samples[0]!;
    const seconds = (snapshot.at - oldest.at) / 1000;
    const t = this.throughput;
    t.at.push(snapshot.at);
    const ids = new Set([...Object.keys(t.members), ...totals.keys()]);
    for (const id of ids) {
      const series = (t.members[id] ??= new Array<number | null>(t.at.length - 1).fill(null));
      const now = totals.get(id);
      series.push(now === undefined || seconds <= 0 ? null : (now - (oldest.totals.get(id) ?? 0)) / seconds);
    }
    if (t.at.length > this.historyPoints) {
      t.at.shift();
      for (const id of Object.keys(t.members)) {
        t.members[id]!.shift();
        if (t.members[id]!.every((v) => v === null)) delete t.members[id];
      }
    }
  }

  private state(snapshot: GroupSnapshot | null, error: string | null): DashboardState {
    const health: Record<string, Health> = {};
    const stallMs = Math.max(5_000, 3 * this.intervalMs);
    for (const m of snapshot?.members ?? []) {
      const quiet = m.lastCommitMsAgo ?? snapshot!.at - this.startedAt;
      health[m.id] = !m.live
        ? m.waitingMs !== null
          ? 'waiting'
          : 'gone'
        : !m.allocated
          ? 'joining'
          : m.claimed < m.partitions.length
            ? 'handing off'
            : m.lag > 0 && quiet > stallMs
              ? 'stalled'
              : 'ok';
    }
    const departures: DashboardState['departures'] = {};
    for (const m of snapshot?.members ?? []) {
      const how = this.timeline.departure(m.id);
      if (how) departures[m.id] = how;
    }
    return {
      group: this.group,
      backend: this.backendName,
      at: Date.now(),
      snapshot,
      health,
      departures,
      timeline: this.timeline.entries.map((e) => ({ ...e })),
      throughput: this.throughput,
      error,
    };
  }
}
