import type { Admin, CompressionTypes, Kafka, Producer } from 'kafkajs';
import { lz4Codec, snappyCodec, zstdCodec, type CompressionCodec } from '@kiel/protocol';
import { reach } from './common';
import { fixKafkajsRequestQueue } from './kafkajs-fix';

type KafkajsModule = typeof import('kafkajs');
let loaded: KafkajsModule | undefined;

/**
 * kafkajs, loaded and set up on first use: commands that do not produce (`kiel consume`, `kiel work`) start
 * 0.1 s sooner without it.
 */
function kafkajs(): KafkajsModule {
  if (loaded) return loaded;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const k = require('kafkajs') as KafkajsModule;
  // Without it kafkajs prints TimeoutNegativeWarning on Node 24 (see kafkajs-fix.ts).
  fixKafkajsRequestQueue();
  // kafkajs ships only gzip; it takes other codecs per compression type. Ours come from @kiel/protocol, the same
  // code the consumer decodes with.
  k.CompressionCodecs[k.CompressionTypes.Snappy] = asKafkajsCodec(snappyCodec);
  k.CompressionCodecs[k.CompressionTypes.LZ4] = asKafkajsCodec(lz4Codec);
  k.CompressionCodecs[k.CompressionTypes.ZSTD] = asKafkajsCodec(zstdCodec);
  return (loaded = k);
}

/** The compression names `--compression` accepts. */
export const COMPRESSIONS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
/** One of {@link COMPRESSIONS}. */
export type CompressionName = (typeof COMPRESSIONS)[number];

const asKafkajsCodec = (codec: CompressionCodec) => () => ({
  compress: async (encoder: { buffer: Buffer }) => codec.compress(encoder.buffer),
  decompress: async (buffer: Buffer) => codec.decompress(buffer, { maxOutputBytes: 1 << 28 }),
});
/** kafkajs's compression type for a `--compression` name. */
export function compressionType(name: CompressionName): CompressionTypes {
  const { CompressionTypes: types } = kafkajs();
  const byName: Record<CompressionName, CompressionTypes> = {
    none: types.None,
    gzip: types.GZIP,
    snappy: types.Snappy,
    lz4: types.LZ4,
    zstd: types.ZSTD,
  };
  return byName[name];
}

/** A kafkajs client that gives up on an absent broker quickly and logs nothing (the CLI reports errors itself). */
export function kafkaClient(brokers: readonly string[], clientId = 'kiel-cli'): Kafka {
  const { Kafka, logLevel } = kafkajs();
  return new Kafka({
    clientId,
    brokers: [...brokers],
    connectionTimeout: 3_000,
    requestTimeout: 30_000,
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2_000 },
    logLevel: logLevel.NOTHING,
  });
}

/** Connects an admin client, failing within the CLI's deadline with a message naming the brokers. */
export async function connectAdmin(kafka: Kafka, brokers: readonly string[]): Promise<Admin> {
  const admin = kafka.admin();
  await reach('Kafka', brokers.join(','), () => admin.connect()).catch(async (err) => {
    await admin.disconnect().catch(() => undefined);
    throw err;
  });
  return admin;
}

/** Connects a producer, failing within the CLI's deadline with a message naming the brokers. */
export async function connectProducer(kafka: Kafka, brokers: readonly string[]): Promise<Producer> {
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await reach('Kafka', brokers.join(','), () => producer.connect()).catch(async (err) => {
    await producer.disconnect().catch(() => undefined);
    throw err;
  });
  return producer;
}

/**
 * Creates `topic` with `partitions` partitions unless it exists. Returns whether it created it. A topic that exists
 * with fewer partitions is left as it is (and reported by the caller).
 */
export async function ensureTopic(admin: Admin, topic: string, partitions: number): Promise<boolean> {
  const existing = await admin.listTopics();
  if (existing.includes(topic)) return false;
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  } catch (err) {
    // Another process created it between the list and the create: that is fine.
    if ((err as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw err;
    return false;
  }
  return true;
}

/** The partition count of an existing topic. */
export async function partitionCount(admin: Admin, topic: string): Promise<number> {
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
  return metadata.topics[0]?.partitions.length ?? 0;
}

/** The value of message `n`: its number, padded with dots to at least `size` bytes. */
export function messageValue(n: number, size: number): string {
  const id = String(n);
  return id.length >= size ? id : id + ' ' + '.'.repeat(Math.max(0, size - id.length - 1));
}

/** Options of {@link produceMessages}. */
export interface ProduceRun {
  readonly producer: Producer;
  readonly topic: string;
  readonly count: number;
  /** Minimum value size in bytes. */
  readonly size: number;
  readonly compression: CompressionName;
  /** Messages per second; unlimited when absent. */
  readonly rate?: number;
  /** First message number. Default 0. */
  readonly first?: number;
  /** Called after each acknowledged send with the number produced so far. */
  readonly onProgress?: (produced: number) => void;
  /** Checked between sends: stop early when it returns true. */
  readonly stopped?: () => boolean;
}

/**
 * Sends `count` messages, key and value both the message number (the value padded to `size`), in acknowledged
 * batches, paced to `rate` when given. Returns the number sent.
 */
export async function produceMessages(run: ProduceRun): Promise<number> {
  const first = run.first ?? 0;
  // Batches of at most 500, and about ten per second under a rate limit so that pacing stays smooth.
  const batchSize = Math.max(1, Math.min(500, run.rate !== undefined ? Math.ceil(run.rate / 10) : 500));
  const started = performance.now();
  let sent = 0;
  while (sent < run.count && !run.stopped?.()) {
    const n = Math.min(batchSize, run.count - sent);
    const messages = [];
    for (let i = 0; i < n; i++) {
      const id = first + sent + i;
      messages.push({ key: String(id), value: messageValue(id, run.size) });
    }
    await run.producer.send({ topic: run.topic, compression: compressionType(run.compression), acks: -1, messages });
    sent += n;
    run.onProgress?.(sent);
    if (run.rate !== undefined) {
      const due = started + (sent / run.rate) * 1000;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
  return sent;
}
