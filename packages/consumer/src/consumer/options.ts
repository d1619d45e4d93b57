import type * as tls from 'node:tls';
import type { CodecRegistry, KafkaRecord } from '@kiel/protocol';
import { invalidConfig } from '../errors';
import type { OffsetReset } from '../fetch/fetcher';
import type { RetryOptions } from '../cluster';
import type { SaslOptions } from '../net/broker';
import type { MetricsWindow } from '../metrics';

/** A record as the application sees it. `key` and `headers` values are views into the fetched bytes. */
export interface Message<V = unknown> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  /** Milliseconds since the epoch (CreateTime or LogAppendTime); -1 for message format v0. */
  readonly timestamp: number;
  readonly key: Buffer | null;
  readonly value: V;
  readonly headers: KafkaRecord['headers'];
}

/** Consecutive messages of one partition, handed over together. */
export interface Batch<V = unknown> {
  readonly topic: string;
  readonly partition: number;
  readonly messages: Message<V>[];
  /** The partition's high watermark when fetched: `highWatermark - lastOffset - 1` is the lag. */
  readonly highWatermark: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
  /**
   * Aborted when this member may no longer hand out messages of the partition: it is being revoked, the member is
   * fenced (no contact with its backend), or its session was lost. A long handler should stop early: call
   * {@link resolveOffset} for what it finished, then return, or throw `signal.reason` (`throwIfAborted()`).
   */
  readonly signal: AbortSignal;
  /** Whether the batch is stale: {@link signal} is aborted, or ownership or the fencing clock fails right now. */
  isStale(): boolean;
  /**
   * Marks the messages up to and including `offset` as handled, for a handler that stops early on {@link signal}.
   * A handler that returns has handled the whole batch, unless the signal was aborted and it called `resolveOffset`:
   * then only what it resolved counts. A handler that throws once the signal is aborted has handled what it
   * resolved (nothing, if it resolved nothing), and `run()` goes on. The rest goes to the partition's next owner.
   */
  resolveOffset(offset: number): void;
}

/** Turns a record's value bytes into the application's value. Throwing skips the message (see `skipped`). */
export type Deserializer<V> = (value: Buffer | null, record: KafkaRecord) => V;

/** The built-in deserializers. `json` is the default, as in kiel. */
export const deserializers = {
  /** JSON.parse of the UTF-8 value; null stays null. */
  json: ((value: Buffer | null) =>
    value === null ? null : JSON.parse(value.toString('utf8'))) as Deserializer<unknown>,
  /** The UTF-8 string; null stays null. */
  string: ((value: Buffer | null) => (value === null ? null : value.toString('utf8'))) as Deserializer<string | null>,
  /** The raw bytes, a view into the fetched buffer (no copy). */
  raw: ((value: Buffer | null) => value) as Deserializer<Buffer | null>,
};

/** Options every consumer shares. */
export interface BaseConsumerOptions<V> {
  /** Bootstrap brokers, `host:port`. */
  readonly brokers: readonly string[];
  /** Client id sent to brokers. Default `kiel`. */
  readonly clientId?: string;
  /** TLS: `true`, or Node's `tls.connect` options (ca, cert, key, ...). */
  readonly tls?: boolean | tls.ConnectionOptions;
  /** SASL PLAIN or SCRAM-SHA-256/512. */
  readonly sasl?: SaslOptions;
  /** ms to connect, negotiate and authenticate with one broker. Default 10 000. */
  readonly connectTimeout?: number;
  /** Default per-request timeout, ms. Default 30 000. */
  readonly requestTimeout?: number;
  readonly retry?: RetryOptions;
  /** Longest time a fetch waits for `minBytes`, ms. Default 1 000 (kiel's `max_wait_time`). */
  readonly maxWaitTime?: number;
  /** Bytes a fetch waits for. Default 1. */
  readonly minBytes?: number;
  /** Size limit of one fetch response, bytes. Default 1 MiB (kiel's `max_bytes`). */
  readonly maxBytes?: number;
  /** Size limit per partition within a fetch, bytes. Default `maxBytes`. */
  readonly maxPartitionBytes?: number;
  /** Fetched bytes that may wait for the application before fetching pauses. Default 32 MiB. */
  readonly maxBufferedBytes?: number;
  /** `read_committed` hides aborted transactions. Default `read_uncommitted`. */
  readonly isolationLevel?: 'read_uncommitted' | 'read_committed';
  /** Check record batch CRCs. Default true. */
  readonly verifyCrc?: boolean;
  /** Values: `'json'` (default), `'string'`, `'raw'` or a function. */
  readonly deserializer?: 'json' | 'string' | 'raw' | Deserializer<V>;
  /** When a position is out of range (or there is none): `earliest` (default), `latest` or `error`. */
  readonly offsetReset?: OffsetReset;
  /** Compression codecs, to add or replace one. Default: gzip, snappy, lz4, zstd. */
  readonly codecs?: CodecRegistry;
  /** Metadata older than this is refreshed to notice new partitions, ms. Default 30 000. */
  readonly metadataMaxAge?: number;
  /** The window of `metrics()` rates, averages and maxima. Default 2 samples of 30 s, as the Java client. */
  readonly metricsWindow?: MetricsWindow;
}

/** Options with defaults applied. */
export interface ResolvedOptions<V> {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly tls: boolean | tls.ConnectionOptions | undefined;
  readonly sasl: SaslOptions | undefined;
  readonly connectTimeout: number;
  readonly requestTimeout: number;
  readonly retry: RetryOptions | undefined;
  readonly maxWaitTime: number;
  readonly minBytes: number;
  readonly maxBytes: number;
  readonly maxPartitionBytes: number;
  readonly maxBufferedBytes: number;
  readonly isolationLevel: 'read_uncommitted' | 'read_committed';
  readonly verifyCrc: boolean;
  readonly deserializer: Deserializer<V>;
  readonly offsetReset: OffsetReset;
  readonly codecs: CodecRegistry | undefined;
  readonly metadataMaxAge: number;
}

function int(options: object, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = (options as Record<string, unknown>)[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidConfig(name, `expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

function oneOf<T extends string>(options: object, name: string, allowed: readonly T[], fallback: T): T {
  const value = (options as Record<string, unknown>)[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw invalidConfig(
      name,
      `expected one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}

/** Validates options and applies defaults. Throws ERR_INVALID_CONFIG naming the option. */
export function resolveOptions<V>(options: BaseConsumerOptions<V>): ResolvedOptions<V> {
  if (options === null || typeof options !== 'object') throw invalidConfig('options', 'expected an object');
  if (!Array.isArray(options.brokers) || options.brokers.some((b) => typeof b !== 'string')) {
    throw invalidConfig('brokers', 'expected an array of host:port strings');
  }
  if (options.clientId !== undefined && (typeof options.clientId !== 'string' || options.clientId === '')) {
    throw invalidConfig('clientId', 'expected a non-empty string');
  }
  const sasl = options.sasl;
  if (sasl !== undefined) {
    if (!['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'].includes(sasl?.mechanism)) {
      throw invalidConfig('sasl.mechanism', "expected 'PLAIN', 'SCRAM-SHA-256' or 'SCRAM-SHA-512'");
    }
    if (typeof sasl.username !== 'string' || typeof sasl.password !== 'string') {
      throw invalidConfig('sasl', 'username and password must be strings');
    }
  }
  const d = options.deserializer;
  let deserializer: Deserializer<V>;
  if (d === undefined || d === 'json') deserializer = deserializers.json as Deserializer<V>;
  else if (d === 'string') deserializer = deserializers.string as Deserializer<V>;
  else if (d === 'raw') deserializer = deserializers.raw as Deserializer<V>;
  else if (typeof d === 'function') deserializer = d;
  else throw invalidConfig('deserializer', "expected 'json', 'string', 'raw' or a function");
  const maxBytes = int(options, 'maxBytes', 1024 * 1024, 1, 0x7fffffff);
  return {
    brokers: options.brokers,
    clientId: options.clientId ?? 'kiel',
    tls: options.tls,
    sasl,
    connectTimeout: int(options, 'connectTimeout', 10_000, 1),
    requestTimeout: int(options, 'requestTimeout', 30_000, 1),
    retry: options.retry,
    maxWaitTime: int(options, 'maxWaitTime', 1_000, 0, 0x7fffffff),
    minBytes: int(options, 'minBytes', 1, 0, 0x7fffffff),
    maxBytes,
    maxPartitionBytes: int(options, 'maxPartitionBytes', maxBytes, 1, 0x7fffffff),
    maxBufferedBytes: int(options, 'maxBufferedBytes', 32 * 1024 * 1024, 1),
    isolationLevel: oneOf(
      options,
      'isolationLevel',
      ['read_uncommitted', 'read_committed'] as const,
      'read_uncommitted',
    ),
    verifyCrc: options.verifyCrc === undefined ? true : Boolean(options.verifyCrc),
    deserializer,
    offsetReset: oneOf(options, 'offsetReset', ['earliest', 'latest', 'error'] as const, 'earliest'),
    codecs: options.codecs,
    metadataMaxAge: int(options, 'metadataMaxAge', 30_000, 100),
  };
}
