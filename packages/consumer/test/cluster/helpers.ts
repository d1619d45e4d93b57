// Shared pieces of the Kafka cluster tests: the cluster's brokers, topics whose partitions are led by different
// brokers, per-partition producers that keep writing through faults, a record of what the consumer handled, and the
// measurement of a fault's recovery time.
import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import * as cluster from '../../../../scripts/cluster';
import type { ClusterNode, KafkaPartitionLeader } from '../../../../scripts/cluster';
import { sleep, uniqueName, waitFor } from '@kiel/test-kit';

export { cluster };
export const BROKERS = cluster.hosts().kafka;

const started = Date.now();
/** A progress line with the seconds since the file started, so a slow or stuck step shows in the output. */
export function step(text: string): void {
  process.stdout.write(`[cluster ${((Date.now() - started) / 1000).toFixed(1)} s] ${text}\n`);
}

/** kafkajs as the tests' producer and admin client (the consumer under test is ours). */
export const kafka = new Kafka({
  clientId: 'kiel-cluster-test',
  brokers: BROKERS,
  logLevel: logLevel.NOTHING,
  // A frozen broker must not hold a produce for kafkajs' default 30 s.
  requestTimeout: 5_000,
  retry: { retries: 30, initialRetryTime: 100, maxRetryTime: 1_000 },
});

/** Every node runs and answers: a test that failed midway may have left one killed or paused. */
export async function healCluster(): Promise<void> {
  for (const node of cluster.NODES) {
    const state = cluster.state(node);
    if (state === 'paused') await cluster.resume(node);
    else if (state !== 'running') await cluster.start(node);
  }
  await cluster.waitAllReady(120_000);
}

/** Broker ids in replica order for partition `p` of a spread topic: leaders rotate over 1, 2, 3. */
export const spreadReplicas = (p: number, rf = 3) => Array.from({ length: rf }, (_, i) => ((p + i) % 3) + 1);

/** Creates a topic whose partition p has replicas {@link spreadReplicas}(p), and waits for its leaders. */
export async function createSpreadTopic(
  admin: Admin,
  prefix: string,
  partitions: number,
  options: { rf?: number; configs?: Record<string, string> } = {},
): Promise<string> {
  const topic = uniqueName(prefix);
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      {
        topic,
        replicaAssignment: Array.from({ length: partitions }, (_, p) => ({
          partition: p,
          replicas: spreadReplicas(p, options.rf ?? 3),
        })),
        configEntries: Object.entries(options.configs ?? {}).map(([name, value]) => ({ name, value })),
      },
    ],
  });
  for (let p = 0; p < partitions; p++) await cluster.waitForKafkaLeader(topic, p);
  return topic;
}

/** Waits until every partition of `topic` has all its replicas in sync. */
export async function waitFullIsr(topic: string, partitions: number, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    `a full ISR on every partition of ${topic}`,
    async () => {
      const md = await cluster.kafkaMetadata([topic]);
      const t = md.topics.find((x) => x.name === topic);
      return (
        !!t &&
        t.partitions.length === partitions &&
        t.partitions.every((p) => p.leader >= 0 && p.isr.length === p.replicas.length)
      );
    },
    timeoutMs,
  );
}

/** The log end offset of each partition (ListOffsets latest, through kafkajs). */
export async function logEnds(admin: Admin, topic: string): Promise<number[]> {
  const offsets = await admin.fetchTopicOffsets(topic);
  const ends: number[] = [];
  for (const o of offsets) ends[o.partition] = Number(o.high);
  return ends;
}

/** Runs `op` until it succeeds (a client that connects right after a fault may find a broker not ready yet). */
export async function retrying<T>(op: () => Promise<T>, attempts = 20): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await op();
    } catch (err) {
      if (i >= attempts) throw err;
      await sleep(500);
    }
  }
}

/**
 * One kafkajs producer per partition, each writing `perSend` messages (`<partition>:<n>`) every
 * `intervalMs`, acks=all, so a fault on one partition's leader never holds up the others.
 */
export class PartitionProducers {
  private readonly producers: Producer[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  /** Values acknowledged, per partition. */
  readonly acked: string[][];
  readonly errors: string[] = [];

  constructor(
    private readonly topic: string,
    private readonly partitions: number,
    private readonly intervalMs = 20,
    private readonly perSend = 4,
  ) {
    this.acked = Array.from({ length: partitions }, () => []);
  }

  async start(): Promise<void> {
    this.running = true;
    for (let p = 0; p < this.partitions; p++) {
      // Not idempotent: kafkajs' idempotent producer can wedge on sequence errors after a request timed out. Its
      // retries may write a value twice (at two offsets); the checks are on offsets and acknowledged values.
      const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 5, maxRetryTime: 1_000 } });
      await retrying(() => producer.connect());
      this.producers.push(producer);
      this.loops.push(this.loop(producer, p));
    }
  }

  private async loop(producer: Producer, partition: number): Promise<void> {
    let n = 0;
    while (this.running) {
      const values = Array.from({ length: this.perSend }, () => `${partition}:${n++}`);
      try {
        await producer.send({ topic: this.topic, acks: -1, messages: values.map((value) => ({ partition, value })) });
        this.acked[partition]!.push(...values);
      } catch (err) {
        // Not acknowledged: these values may or may not be in the log; only acknowledged ones must be read.
        this.errors.push(`${partition}: ${(err as Error).message}`);
        await sleep(100);
      }
      await sleep(this.intervalMs);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    await Promise.all(this.producers.map((p) => p.disconnect()));
  }
}

/** One message handled: when, where, and when the broker appended it (LogAppendTime topics). */
interface HandledMessage {
  readonly at: number;
  readonly offset: number;
  readonly appendTime: number;
  readonly value: string;
  readonly member: string;
}

/** What a consumer (or a group's members) handled, per partition, in order. */
export class HandledLog {
  readonly byPartition: HandledMessage[][];

  constructor(readonly partitions: number) {
    this.byPartition = Array.from({ length: partitions }, () => []);
  }

  record(partition: number, offset: number, appendTime: number, value: string, member = 'single'): void {
    this.byPartition[partition]!.push({ at: Date.now(), offset, appendTime, value, member });
  }

  get count(): number {
    return this.byPartition.reduce((n, list) => n + list.length, 0);
  }

  /** Offsets of `partition` handled more than once, and offsets below `end` never handled. */
  check(ends: number[]): { duplicates: string[]; missing: string[] } {
    const duplicates: string[] = [];
    const missing: string[] = [];
    for (let p = 0; p < this.partitions; p++) {
      const seen = new Map<number, number>();
      for (const m of this.byPartition[p]!) seen.set(m.offset, (seen.get(m.offset) ?? 0) + 1);
      for (const [offset, n] of seen) if (n > 1) duplicates.push(`${p}@${offset} x${n}`);
      for (let o = 0; o < ends[p]!; o++) if (!seen.has(o)) missing.push(`${p}@${o}`);
    }
    return { duplicates, missing };
  }

  /** Acknowledged values that were never handled. */
  unhandled(acked: string[][]): string[] {
    const handled = new Set(this.byPartition.flatMap((list) => list.map((m) => m.value)));
    return acked.flat().filter((v) => !handled.has(v));
  }

  /** The first message of `partition` handled at or after `since`. */
  firstSince(partition: number, since: number): HandledMessage | undefined {
    return this.byPartition[partition]!.find((m) => m.at >= since);
  }
}

/** The figures of one fault, per affected partition (ms). */
export interface Recovery {
  readonly fault: string;
  readonly partition: number;
  /** From the fault to the cluster naming the new leader (polled every 50 ms). */
  readonly electedMs: number;
  /** From the fault to the consumer handling a probe message written to the new leader after its election. */
  readonly flowingMs: number;
  /**
   * Ours alone: from the probe's acknowledgement (the new leader has it, and so do its in-sync followers) to the
   * consumer handing it to the application. The probe is written only after the election, so this includes whatever
   * part of the consumer's failover was still left by then.
   */
  readonly consumerMs: number;
}

/**
 * Causes a fault and measures, for each affected partition, when the cluster named a leader that `moved` accepts
 * and when a probe message written to that partition after the election reached the application. Probes come from a
 * producer of their own, so a continuous producer stuck on the fault does not blur the figure.
 */
export async function measureFault(
  fault: string,
  topic: string,
  affected: number[],
  log: HandledLog,
  cause: () => Promise<void>,
  moved: (partition: number, leader: KafkaPartitionLeader) => boolean,
  faulty?: number,
  timeoutMs = 60_000,
): Promise<Recovery[]> {
  const t0 = Date.now();
  step(`${fault}: fault on partitions ${affected.join(',')}`);
  await cause();
  const elected = await Promise.all(
    affected.map(async (p) => {
      await cluster.waitForKafkaLeader(topic, p, (l) => moved(p, l), timeoutMs);
      return Date.now();
    }),
  );
  step(`${fault}: new leaders named after ${elected.map((t) => t - t0).join(', ')} ms`);
  // The probe's client does not bootstrap from the faulty broker: kafkajs would wait out its request timeout on a
  // frozen one, again and again, and that would be kafkajs' recovery, not ours.
  const probeClient = new Kafka({
    clientId: 'kiel-cluster-probe',
    brokers: BROKERS.filter((b) => faulty === undefined || b !== cluster.address(`kafka-${faulty}` as ClusterNode)),
    logLevel: logLevel.NOTHING,
    requestTimeout: 5_000,
    retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
  const probe = probeClient.producer({ allowAutoTopicCreation: false });
  await retrying(() => probe.connect());
  try {
    return await Promise.all(
      affected.map(async (p, i) => {
        const value = `probe:${fault}:${p}`;
        await retrying(() => probe.send({ topic, acks: -1, messages: [{ partition: p, value }] }));
        const ackedAt = Date.now();
        await waitFor(
          `probe ${value} handled`,
          () => log.byPartition[p]!.some((m) => m.value === value),
          timeoutMs,
        ).catch((err: Error) => {
          throw new Error(`${err.message}; handled per partition: ${log.byPartition.map((l) => l.length).join(',')}`);
        });
        const handled = log.byPartition[p]!.find((m) => m.value === value)!;
        return {
          fault,
          partition: p,
          electedMs: elected[i]! - t0,
          flowingMs: handled.at - t0,
          consumerMs: Math.max(0, handled.at - ackedAt),
        };
      }),
    );
  } finally {
    await probe.disconnect();
  }
}

/** Prints recovery figures as one table (the test's output is where the README's figures come from). */
export function report(title: string, rows: Recovery[]): void {
  const lines = rows.map(
    (r) =>
      `${r.fault.padEnd(28)} p${String(r.partition).padEnd(3)} elected ${String(r.electedMs).padStart(6)} ms  flowing ${String(r.flowingMs).padStart(6)} ms  consumer ${String(r.consumerMs).padStart(5)} ms`,
  );
  process.stdout.write(`\n${title}\n${lines.join('\n')}\n`);
}
