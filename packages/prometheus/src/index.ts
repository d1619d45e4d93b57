import { Counter, Gauge, register as defaultRegistry, type Registry } from 'prom-client';
import type { ConsumerMetrics, GroupedConsumerMetrics, PartitionMetrics } from '@kiel/consumer';

/** Anything with `metrics()`: a SingleConsumer or a GroupedConsumer of `@kiel/consumer`. */
export interface MetricsSource {
  metrics(): ConsumerMetrics | GroupedConsumerMetrics;
}

/** Options of {@link KielCollector}. */
export interface KielCollectorOptions {
  /** The registry to register the metrics in. Default: prom-client's global `register`. */
  readonly registry?: Registry;
  /** Prefix of every metric name. Default `kiel_consumer_`. */
  readonly prefix?: string;
}

type Key<T> = { [K in keyof T]-?: T[K] extends number | undefined ? K : never }[keyof T] & string;

/** One metric: the `metrics()` field it reads, its kind, and ms fields that Prometheus wants in seconds. */
interface Field<T> {
  readonly key: Key<T>;
  readonly help: string;
  readonly kind: 'gauge' | 'counter';
  readonly ms?: true;
  /** The name's stem when the key alone would clash with a consumer-wide figure. */
  readonly stem?: string;
}

const CONSUMER: ReadonlyArray<Field<ConsumerMetrics>> = [
  { key: 'assigned-partitions', kind: 'gauge', help: 'Partitions assigned to the consumer.' },
  { key: 'records-consumed-rate', kind: 'gauge', help: 'Records handed to the application per second.' },
  { key: 'records-consumed-total', kind: 'counter', help: 'Records handed to the application.' },
  { key: 'bytes-consumed-rate', kind: 'gauge', help: 'Record bytes handed to the application per second.' },
  { key: 'bytes-consumed-total', kind: 'counter', help: 'Record bytes handed to the application.' },
  { key: 'records-lag-max', kind: 'gauge', help: 'Largest partition lag in the window, records.' },
  { key: 'records-per-batch-avg', kind: 'gauge', help: 'Average records per batch handed out.' },
  { key: 'fetch-rate', kind: 'gauge', help: 'Fetch requests per second.' },
  { key: 'fetch-total', kind: 'counter', help: 'Fetch requests answered.' },
  { key: 'fetch-latency-avg', kind: 'gauge', ms: true, help: 'Average Fetch round trip (long polls included).' },
  { key: 'fetch-latency-max', kind: 'gauge', ms: true, help: 'Longest Fetch round trip in the window.' },
  { key: 'fetch-size-avg', kind: 'gauge', help: 'Average record bytes per Fetch answer.' },
  { key: 'fetch-size-max', kind: 'gauge', help: 'Largest record bytes of one Fetch answer in the window.' },
];

const GROUP: ReadonlyArray<Field<GroupedConsumerMetrics>> = [
  { key: 'generation', kind: 'gauge', help: 'Generation of the allocation the member follows.' },
  { key: 'commit-rate', kind: 'gauge', help: 'OffsetCommit requests per second.' },
  { key: 'commit-total', kind: 'counter', help: 'OffsetCommit requests that succeeded.' },
  { key: 'commit-latency-avg', kind: 'gauge', ms: true, help: 'Average OffsetCommit round trip.' },
  { key: 'commit-latency-max', kind: 'gauge', ms: true, help: 'Longest OffsetCommit round trip in the window.' },
  { key: 'rebalance-total', kind: 'counter', help: 'Rebalances (generations applied, hand-backs on close).' },
  { key: 'rebalance-rate-per-hour', kind: 'gauge', help: 'Rebalances per hour.' },
  { key: 'rebalance-latency-avg', kind: 'gauge', ms: true, help: 'Average rebalance (handoff) time.' },
  { key: 'rebalance-latency-max', kind: 'gauge', ms: true, help: 'Longest rebalance (handoff) time in the window.' },
  { key: 'rebalance-latency-total', kind: 'counter', ms: true, help: 'Time spent rebalancing.' },
  { key: 'last-rebalance-seconds-ago', kind: 'gauge', help: 'Seconds since the last rebalance; -1 before one.' },
  { key: 'fenced-time-total', kind: 'counter', ms: true, help: 'Time spent fenced (no backend contact).' },
  { key: 'fenced-total', kind: 'counter', help: 'Times the member fenced itself.' },
  { key: 'partition-handoff-latency-avg', kind: 'gauge', ms: true, help: 'Average handoff step of one partition.' },
  { key: 'partition-handoff-latency-max', kind: 'gauge', ms: true, help: 'Longest handoff step of one partition.' },
  { key: 'claim-wait-avg', kind: 'gauge', ms: true, help: "Average wait for the previous owner's claim." },
  { key: 'claim-wait-max', kind: 'gauge', ms: true, help: "Longest wait for the previous owner's claim." },
  { key: 'claim-wait-total', kind: 'counter', ms: true, help: "Time spent waiting for previous owners' claims." },
  { key: 'backend-latency-avg', kind: 'gauge', ms: true, help: 'Average claim/release round trip to the backend.' },
  { key: 'backend-latency-max', kind: 'gauge', ms: true, help: 'Longest claim/release round trip to the backend.' },
  { key: 'backend-last-contact-ms-ago', kind: 'gauge', ms: true, help: 'Time since the last backend contact.' },
];

const PARTITION: ReadonlyArray<Field<PartitionMetrics>> = [
  { key: 'records-lag', kind: 'gauge', help: 'High watermark minus the consumer position, records.' },
  {
    key: 'records-lag-max',
    stem: 'partition-records-lag-max',
    kind: 'gauge',
    help: 'Largest lag of the partition in the window, records.',
  },
  { key: 'high-watermark', kind: 'gauge', help: 'High watermark from the last Fetch answer.' },
  { key: 'position', kind: 'gauge', help: 'Next offset the consumer hands out.' },
  {
    key: 'records-consumed-rate',
    stem: 'partition-records-consumed-rate',
    kind: 'gauge',
    help: 'Records of the partition handed out per second.',
  },
  { key: 'last-handoff-ms', kind: 'gauge', ms: true, help: 'Last handoff of the partition to this member.' },
];

/** `fetch-latency-avg` (ms) → `kiel_consumer_fetch_latency_avg_seconds`; `records-lag` → `..._records_lag`. */
function metricName(prefix: string, field: { key: string; ms?: true; kind: string; stem?: string }): string {
  let name = (field.stem ?? field.key).replace(/-/g, '_');
  if (field.kind === 'counter') name = name.replace(/_total$/, '');
  if (field.ms) name = name.replace(/_ms(?=_|$)/, '') + '_seconds';
  if (field.kind === 'counter') name += '_total';
  return prefix + name;
}

interface Entry {
  readonly source: MetricsSource;
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * Exposes the `metrics()` of kiel consumers to Prometheus through prom-client: one gauge or counter per figure,
 * labelled `client_id` and `group` (plus `topic` and `partition` for the per-partition ones, and any labels given to
 * {@link add}). Nothing is recorded between scrapes: every scrape reads each consumer's snapshot once.
 *
 * @example
 * import http from 'node:http';
 * import { Registry } from 'prom-client';
 * import { KielCollector } from '@kiel/prometheus';
 *
 * const registry = new Registry();
 * new KielCollector({ registry }).add(consumer);
 * http.createServer(async (_req, res) => {
 *   res.setHeader('Content-Type', registry.contentType);
 *   res.end(await registry.metrics());
 * }).listen(9464);
 */
export class KielCollector {
  private readonly entries = new Set<Entry>();
  private readonly registry: Registry;
  private readonly names: string[] = [];
  /** Snapshots of the scrape under way: every metric of one scrape reads the same one. */
  private snapshots: Map<Entry, ConsumerMetrics | GroupedConsumerMetrics> | undefined;
  private extraLabels: string[] = [];
  private registered = false;
  private readonly prefix: string;

  constructor(options: KielCollectorOptions = {}) {
    this.registry = options.registry ?? defaultRegistry;
    this.prefix = options.prefix ?? 'kiel_consumer_';
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(this.prefix)) {
      throw new TypeError(`KielCollector: prefix ${JSON.stringify(this.prefix)} is not a valid metric name prefix`);
    }
  }

  /**
   * Starts exposing a consumer's figures. `labels` tell consumers with the same client id and group apart (all
   * consumers of one collector must use the same label names). Returns the collector.
   */
  add(source: MetricsSource, labels: Readonly<Record<string, string>> = {}): this {
    if (!source || typeof source.metrics !== 'function') {
      throw new TypeError('KielCollector.add: expected a consumer of @kiel/consumer (something with metrics())');
    }
    const names = Object.keys(labels).sort();
    if (!this.registered) {
      this.extraLabels = names;
      this.register();
    } else if (names.join() !== this.extraLabels.join()) {
      throw new TypeError(
        `KielCollector.add: labels ${JSON.stringify(names)} differ from the first consumer's ` +
          `${JSON.stringify(this.extraLabels)}; every consumer of one collector has the same label names`,
      );
    }
    this.entries.add({ source, labels: { ...labels } });
    return this;
  }

  /** Stops exposing a consumer (a closed one, for instance). */
  remove(source: MetricsSource): void {
    for (const e of this.entries) if (e.source === source) this.entries.delete(e);
  }

  /** Removes every metric of this collector from its registry. */
  unregister(): void {
    for (const name of this.names) this.registry.removeSingleMetric(name);
    this.names.length = 0;
    this.registered = false;
    this.entries.clear();
  }

  private snapshot(): Map<Entry, ConsumerMetrics | GroupedConsumerMetrics> {
    if (!this.snapshots) {
      const taken = new Map<Entry, ConsumerMetrics | GroupedConsumerMetrics>();
      for (const e of this.entries) taken.set(e, e.source.metrics());
      this.snapshots = taken;
      // prom-client calls every metric's collect() in one synchronous pass per scrape: one snapshot serves it.
      setImmediate(() => (this.snapshots = undefined));
    }
    return this.snapshots;
  }

  private register(): void {
    this.registered = true;
    const base = ['client_id', 'group', ...this.extraLabels];
    const labelsOf = (e: Entry, m: ConsumerMetrics) => ({
      client_id: m.clientId,
      group: 'group' in m ? (m as GroupedConsumerMetrics).group : '',
      ...e.labels,
    });
    const add = <T>(field: Field<T>, labelNames: string[], rows: () => Iterable<[Record<string, string>, T]>): void => {
      const name = metricName(this.prefix, field);
      const scale = field.ms ? 1 / 1000 : 1;
      const read = (row: T) => (row as Record<string, unknown>)[field.key];
      this.names.push(name);
      if (field.kind === 'counter') {
        new Counter({
          name,
          help: field.help,
          labelNames,
          registers: [this.registry],
          collect() {
            this.reset();
            for (const [labels, row] of rows()) {
              const v = read(row);
              if (typeof v === 'number' && Number.isFinite(v) && v >= 0) this.inc(labels, v * scale);
            }
          },
        });
      } else {
        new Gauge({
          name,
          help: field.help,
          labelNames,
          registers: [this.registry],
          collect() {
            this.reset();
            for (const [labels, row] of rows()) {
              const v = read(row);
              // NaN (no sample in the window) is exposed as NaN, as the Java client's JMX figures are.
              if (typeof v === 'number') this.set(labels, v * scale);
            }
          },
        });
      }
    };
    const consumers = function* (this: KielCollector): Iterable<[Record<string, string>, ConsumerMetrics]> {
      for (const [e, m] of this.snapshot()) yield [labelsOf(e, m), m];
    }.bind(this);
    const groups = function* (this: KielCollector): Iterable<[Record<string, string>, GroupedConsumerMetrics]> {
      for (const [e, m] of this.snapshot()) if ('group' in m) yield [labelsOf(e, m), m as GroupedConsumerMetrics];
    }.bind(this);
    const partitions = function* (this: KielCollector): Iterable<[Record<string, string>, PartitionMetrics]> {
      for (const [e, m] of this.snapshot()) {
        const labels = labelsOf(e, m);
        for (const p of m.partitions) yield [{ ...labels, topic: p.topic, partition: String(p.partition) }, p];
      }
    }.bind(this);
    for (const f of CONSUMER) add(f, base, consumers);
    for (const f of GROUP) add(f, base, groups);
    add<GroupedConsumerMetrics>(
      { key: 'fenced' as Key<GroupedConsumerMetrics>, kind: 'gauge', help: '1 while the member is fenced.' },
      base,
      function* () {
        for (const [labels, m] of groups()) yield [labels, { ...m, fenced: m.fenced ? 1 : 0 } as never];
      },
    );
    for (const f of PARTITION) add(f, [...base, 'topic', 'partition'], partitions);
  }
}
