import { invalidConfig } from './errors';

/**
 * How rates, averages and maxima are windowed: like the Java client's `metrics.sample.window.ms` and
 * `metrics.num.samples`, the last `samples` samples of `sampleMs` each count. Defaults: 30 000 ms × 2, the Java
 * client's, so a figure covers the last 30 to 60 s.
 */
export interface MetricsWindow {
  /** Length of one sample, ms. Default 30 000. */
  readonly sampleMs?: number;
  /** Samples kept. Default 2. */
  readonly samples?: number;
}

/** Per-partition figures of {@link ConsumerMetrics}. */
export interface PartitionMetrics {
  readonly topic: string;
  readonly partition: number;
  /**
   * High watermark minus the consumer's position (the next offset to hand out, one past the last handled message;
   * the fetch position before anything was handled). NaN until a fetch answer brought the high watermark.
   */
  readonly 'records-lag': number;
  /** The largest lag seen in the window: at every batch handed out and now. NaN when none was seen. */
  readonly 'records-lag-max': number;
  /** The partition's high watermark from the last fetch answer; -1 until one came. */
  readonly 'high-watermark': number;
  /** The consumer's position (see `records-lag`); -1 when it has none yet. */
  readonly position: number;
  /** Records of this partition handed out per second, over the window. */
  readonly 'records-consumed-rate': number;
  /** Whether fetching it is paused (by the application, or while fenced). */
  readonly paused: boolean;
  /** GroupedConsumer: how long this partition's last handoff to this member (claim to fetching) took, ms. NaN if none. */
  readonly 'last-handoff-ms'?: number;
}

/**
 * A snapshot of a consumer's figures, named as the Java consumer names them (`consumer-fetch-manager-metrics`,
 * `consumer-coordinator-metrics`). Rates are per second and averages and maxima cover the {@link MetricsWindow};
 * `-total` figures count since the consumer was made. Latencies are in ms. An average or maximum with no sample
 * in the window is NaN, as in the Java client.
 */
export interface ConsumerMetrics {
  /** When the snapshot was taken, ms since the epoch. */
  readonly timestamp: number;
  readonly clientId: string;
  /** The window averages, maxima and rates cover. */
  readonly window: { readonly sampleMs: number; readonly samples: number };
  /** Partitions assigned to this consumer (fetching, or paused). */
  readonly 'assigned-partitions': number;
  /** Records handed to the application per second. */
  readonly 'records-consumed-rate': number;
  readonly 'records-consumed-total': number;
  /** Record bytes (as fetched, before decompression) handed to the application per second. */
  readonly 'bytes-consumed-rate': number;
  readonly 'bytes-consumed-total': number;
  /** The largest per-partition `records-lag-max`. NaN when none was seen. */
  readonly 'records-lag-max': number;
  /** Average records per handed-out batch. */
  readonly 'records-per-batch-avg': number;
  /** Fetch requests per second, and their round trip (long polls included). */
  readonly 'fetch-rate': number;
  readonly 'fetch-total': number;
  readonly 'fetch-latency-avg': number;
  readonly 'fetch-latency-max': number;
  /** Record bytes per fetch answer. */
  readonly 'fetch-size-avg': number;
  readonly 'fetch-size-max': number;
  readonly partitions: readonly PartitionMetrics[];
}

/** {@link ConsumerMetrics} of a GroupedConsumer: the group's figures too. */
export interface GroupedConsumerMetrics extends ConsumerMetrics {
  readonly group: string;
  readonly 'member-id': string;
  readonly generation: number;
  readonly leader: boolean;
  /** OffsetCommit round trips (retries inside included). */
  readonly 'commit-rate': number;
  readonly 'commit-total': number;
  readonly 'commit-latency-avg': number;
  readonly 'commit-latency-max': number;
  /** Generations applied (and the hand-back on close): from seeing the allocation until owning exactly its share. */
  readonly 'rebalance-total': number;
  readonly 'rebalance-rate-per-hour': number;
  readonly 'rebalance-latency-avg': number;
  readonly 'rebalance-latency-max': number;
  readonly 'rebalance-latency-total': number;
  /** Seconds since the last rebalance was applied; -1 before the first (as the Java client reports). */
  readonly 'last-rebalance-seconds-ago': number;
  /** Whether the member is fenced right now (no contact with its backend past the fencing timeout). */
  readonly fenced: boolean;
  /** Time spent fenced since the consumer was made, the current stretch included, ms. */
  readonly 'fenced-time-total': number;
  readonly 'fenced-total': number;
  /** One partition's handoff step: revocation (commit, release) or assignment (claim, OffsetFetch, fetch), ms. */
  readonly 'partition-handoff-latency-avg': number;
  readonly 'partition-handoff-latency-max': number;
  /** How long an assignment waited for the previous owner's claim to go, ms. */
  readonly 'claim-wait-avg': number;
  readonly 'claim-wait-max': number;
  readonly 'claim-wait-total': number;
  /** Round trips to the coordination backend (claim and release calls), ms. */
  readonly 'backend-latency-avg': number;
  readonly 'backend-latency-max': number;
  /** ms since the last successful contact with the backend. */
  readonly 'backend-last-contact-ms-ago': number;
}

/**
 * Count, sum and maximum over a sliding window of `samples` samples of `sampleMs` each (the Java client's
 * SampledStat). Recording is a few arithmetic operations: it runs per batch or per fetch, never per message.
 */
export class WindowedStat {
  private readonly starts: Float64Array;
  private readonly counts: Float64Array;
  private readonly sums: Float64Array;
  private readonly maxes: Float64Array;
  private current = 0;
  /** Since the stat was made, for `-total` figures. */
  totalCount = 0;
  totalSum = 0;

  constructor(
    private readonly sampleMs: number,
    private readonly samples: number,
  ) {
    this.starts = new Float64Array(samples).fill(-Infinity);
    this.counts = new Float64Array(samples);
    this.sums = new Float64Array(samples);
    this.maxes = new Float64Array(samples).fill(-Infinity);
  }

  record(value: number, now: number): void {
    let i = this.current;
    if (now - this.starts[i]! >= this.sampleMs) {
      i = this.current = (i + 1) % this.samples;
      this.starts[i] = now;
      this.counts[i] = 0;
      this.sums[i] = 0;
      this.maxes[i] = -Infinity;
    }
    this.counts[i]! += 1;
    this.sums[i]! += value;
    if (value > this.maxes[i]!) this.maxes[i] = value;
    this.totalCount++;
    this.totalSum += value;
  }

  private live(i: number, now: number): boolean {
    return now - this.starts[i]! < this.sampleMs * this.samples;
  }

  count(now: number): number {
    let n = 0;
    for (let i = 0; i < this.samples; i++) if (this.live(i, now)) n += this.counts[i]!;
    return n;
  }

  sum(now: number): number {
    let s = 0;
    for (let i = 0; i < this.samples; i++) if (this.live(i, now)) s += this.sums[i]!;
    return s;
  }

  /** Average of the values in the window; NaN when there is none. */
  avg(now: number): number {
    const n = this.count(now);
    return n === 0 ? NaN : this.sum(now) / n;
  }

  /** Largest value in the window; NaN when there is none. */
  max(now: number): number {
    let m = -Infinity;
    for (let i = 0; i < this.samples; i++) if (this.live(i, now) && this.maxes[i]! > m) m = this.maxes[i]!;
    return m === -Infinity ? NaN : m;
  }

  /**
   * Sum per second over the window. As in the Java client's Rate, the elapsed time is at least `samples - 1` whole
   * samples, so a young window does not report a spike.
   */
  rate(now: number, perMs = 1000): number {
    let oldest = Infinity;
    for (let i = 0; i < this.samples; i++) if (this.live(i, now) && this.starts[i]! < oldest) oldest = this.starts[i]!;
    if (oldest === Infinity) return 0;
    let elapsed = now - oldest;
    const full = Math.floor(elapsed / this.sampleMs);
    if (full < this.samples - 1) elapsed += (this.samples - 1 - full) * this.sampleMs;
    return (this.sum(now) / Math.max(elapsed, 1)) * perMs;
  }

  /** Count per second over the window (see {@link rate}). */
  countRate(now: number, perMs = 1000): number {
    let oldest = Infinity;
    for (let i = 0; i < this.samples; i++) if (this.live(i, now) && this.starts[i]! < oldest) oldest = this.starts[i]!;
    if (oldest === Infinity) return 0;
    let elapsed = now - oldest;
    const full = Math.floor(elapsed / this.sampleMs);
    if (full < this.samples - 1) elapsed += (this.samples - 1 - full) * this.sampleMs;
    return (this.count(now) / Math.max(elapsed, 1)) * perMs;
  }
}

/** The window with defaults applied; throws ERR_INVALID_CONFIG on a bad one. */
export function resolveWindow(window: MetricsWindow | undefined): { sampleMs: number; samples: number } {
  if (window !== undefined && (window === null || typeof window !== 'object')) {
    throw invalidConfig('metricsWindow', 'expected { sampleMs, samples }');
  }
  const sampleMs = window?.sampleMs ?? 30_000;
  const samples = window?.samples ?? 2;
  if (!Number.isInteger(sampleMs) || sampleMs < 1) {
    throw invalidConfig('metricsWindow.sampleMs', `expected a positive integer (ms), got ${JSON.stringify(sampleMs)}`);
  }
  if (!Number.isInteger(samples) || samples < 1 || samples > 100) {
    throw invalidConfig('metricsWindow.samples', `expected an integer from 1 to 100, got ${JSON.stringify(samples)}`);
  }
  return { sampleMs, samples };
}

/** Per-partition bookkeeping, updated per batch. */
export interface PartitionStats {
  readonly lag: WindowedStat;
  readonly records: WindowedStat;
  lastHandoffMs: number;
}

/**
 * The consumer's bookkeeping behind `metrics()`: fed per batch, per fetch, per commit and per handoff step, read at
 * snapshot time.
 */
export class MetricsRecorder {
  readonly sampleMs: number;
  readonly samples: number;
  readonly batches: WindowedStat;
  readonly bytes: WindowedStat;
  readonly fetches: WindowedStat;
  readonly fetchBytes: WindowedStat;
  readonly commits: WindowedStat;
  readonly rebalances: WindowedStat;
  readonly handoffs: WindowedStat;
  readonly claimWaits: WindowedStat;
  readonly backendCalls: WindowedStat;
  readonly partitions = new Map<string, PartitionStats>();
  lastRebalanceAt = -1;
  fencedSince = -1;
  fencedTotalMs = 0;
  fencedCount = 0;

  constructor(window: MetricsWindow | undefined) {
    const { sampleMs, samples } = resolveWindow(window);
    this.sampleMs = sampleMs;
    this.samples = samples;
    const stat = () => new WindowedStat(sampleMs, samples);
    this.batches = stat();
    this.bytes = stat();
    this.fetches = stat();
    this.fetchBytes = stat();
    this.commits = stat();
    this.rebalances = stat();
    this.handoffs = stat();
    this.claimWaits = stat();
    this.backendCalls = stat();
  }

  partition(key: string): PartitionStats {
    let p = this.partitions.get(key);
    if (!p) {
      p = {
        lag: new WindowedStat(this.sampleMs, this.samples),
        records: new WindowedStat(this.sampleMs, this.samples),
        lastHandoffMs: NaN,
      };
      this.partitions.set(key, p);
    }
    return p;
  }

  /** A batch was handed out. */
  batch(key: string, messages: number, bytes: number, lag: number, now: number): void {
    this.batches.record(messages, now);
    this.bytes.record(bytes, now);
    const p = this.partition(key);
    p.lag.record(lag, now);
    p.records.record(messages, now);
  }

  fence(fenced: boolean, now: number): void {
    if (fenced && this.fencedSince < 0) {
      this.fencedSince = now;
      this.fencedCount++;
    } else if (!fenced && this.fencedSince >= 0) {
      this.fencedTotalMs += now - this.fencedSince;
      this.fencedSince = -1;
    }
  }

  fencedMs(now: number): number {
    return this.fencedTotalMs + (this.fencedSince >= 0 ? now - this.fencedSince : 0);
  }
}
