import type { CodecRegistry } from './codecs';

/** How a batch's timestamps were set: by the producer (`CreateTime`) or by the broker (`LogAppendTime`). */
export type TimestampType = 'CreateTime' | 'LogAppendTime';

/** A record header. Keys are strings (UTF-8 on the wire); values are byte views or null. */
export interface RecordHeader {
  key: string;
  value: Buffer | null;
}

/**
 * One decoded record. `key` and `value` are views into the fetched (or decompressed) bytes, not copies: copy them
 * if you keep them longer than the response buffer should live.
 */
export interface KafkaRecord {
  /** Absolute offset in the partition. */
  offset: number;
  /** Milliseconds since the epoch; -1 when the record has none (message format v0). */
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  /** Shared frozen empty array when the record has no headers. */
  headers: readonly RecordHeader[];
}

/** The marker a control batch carries (KIP-98): the end of a transaction. */
export type ControlType = 'ABORT' | 'COMMIT' | 'UNKNOWN';

/** A decoded record batch (magic 2), or one top-level legacy message (magic 0/1) with its inner messages. */
export interface RecordBatch {
  /** 2 for a RecordBatch, 0 or 1 for a legacy message. */
  magic: number;
  baseOffset: number;
  lastOffsetDelta: number;
  /** -1 when unknown (always for legacy messages). */
  partitionLeaderEpoch: number;
  /** Compression id of the batch (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd). */
  compression: number;
  timestampType: TimestampType;
  /** First timestamp of the batch (RecordBatch) or the wrapper's timestamp (legacy); -1 when none. */
  baseTimestamp: number;
  /** Largest timestamp of the batch; for LogAppendTime the broker's append time. -1 when none. */
  maxTimestamp: number;
  /** -1 when the producer is neither idempotent nor transactional. */
  producerId: number;
  producerEpoch: number;
  baseSequence: number;
  isTransactional: boolean;
  /** A control batch holds a transaction marker, not application data; its `records` is always empty. */
  isControl: boolean;
  /** The marker of a control batch, undefined for data batches. */
  controlType: ControlType | undefined;
  /** Records at or after `fromOffset`, in offset order. */
  records: KafkaRecord[];
}

/** One aborted transaction of a Fetch response partition. */
export interface AbortedTransaction {
  producerId: number | bigint;
  firstOffset: number | bigint;
}

/** Options of {@link decodeRecords}. */
export interface DecodeRecordsOptions {
  /** Check each batch's CRC32C (and each legacy message's CRC32). Default true. */
  verifyCrc?: boolean;
  /**
   * `read_committed` drops the records of aborted transactions, using `abortedTransactions`. Default
   * `read_uncommitted`. Control batches are flagged (`isControl`) under both.
   */
  isolationLevel?: 'read_uncommitted' | 'read_committed';
  /** The partition's `abortedTransactions` of the Fetch response (null or absent: none). */
  abortedTransactions?: readonly AbortedTransaction[] | null;
  /**
   * Drop records before this offset: a fetch at offset N returns the whole batch that holds N, so a compressed
   * batch can start before it. Batches that end before it are skipped without being decompressed.
   */
  fromOffset?: number;
  /** Codecs by compression id. Default {@link defaultCodecs}. */
  codecs?: CodecRegistry;
  /**
   * Largest decompressed size accepted for one batch or wrapper message, a guard against decompression bombs.
   * Default 128 MiB ({@link DEFAULT_MAX_DECOMPRESSED_BYTES}).
   */
  maxDecompressedBytes?: number;
}

/** What {@link decodeRecords} found. */
export interface DecodeRecordsResult {
  /** Data batches with at least one record to deliver, and control batches (flagged, no records). */
  batches: RecordBatch[];
  /** Bytes of the whole batches read, including skipped and filtered ones. */
  bytesConsumed: number;
  /** True when bytes were left after the last whole batch: a batch cut at the fetch size limit. */
  truncated: boolean;
  /**
   * Offset to fetch next: one past the last whole batch read (skipped, aborted and control batches included),
   * or undefined when no whole batch was read.
   */
  nextOffset: number | undefined;
  /**
   * When not even the first batch fits: the size in bytes that batch needs, so a consumer can raise its fetch
   * size. Undefined otherwise, or when too few bytes arrived to read its length.
   */
  sizeNeeded: number | undefined;
  /**
   * The partition leader epoch of the last whole batch read (skipped, aborted and control batches included), or -1
   * when none was read or it was a legacy message. A consumer sends it as Fetch v12's `lastFetchedEpoch`, so the
   * leader can tell it when its log diverged (truncation after an unclean leader change).
   */
  lastEpoch: number;
}

/** What {@link scanRecords} read from the batch headers alone. */
export interface RecordsScan {
  /** Bytes of the whole batches read: decode `buffer.subarray(0, bytesConsumed)` later. */
  bytesConsumed: number;
  /** As {@link DecodeRecordsResult.truncated}. */
  truncated: boolean;
  /** As {@link DecodeRecordsResult.nextOffset}. */
  nextOffset: number | undefined;
  /** As {@link DecodeRecordsResult.sizeNeeded}. */
  sizeNeeded: number | undefined;
  /** As {@link DecodeRecordsResult.lastEpoch}. */
  lastEpoch: number;
  /**
   * 0 when decoding would deliver no record; otherwise the records the headers announce at or after `fromOffset`
   * (at least one per data batch that reaches it; compaction can leave fewer).
   */
  records: number;
}
