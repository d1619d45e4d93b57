/**
 * Encoders of RecordBatch v2 and legacy message sets, for tests, fixtures and anyone producing.
 */
import { KafkaProtocolError } from '../errors';
import { Writer } from '../primitives/writer';
import { crc32, crc32c } from './crc';
import { CompressionType, defaultCodecs, type CodecRegistry } from './codecs';
import { LOG_OVERHEAD, RECORD_BATCH_OVERHEAD } from './decode';
import type { ControlType, TimestampType } from './types';

/** A header to encode. Strings are written as UTF-8. */
export interface RecordHeaderInput {
  key: string;
  value: Buffer | string | null;
}

/** A record to encode into a RecordBatch v2. */
export interface RecordInput {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  headers?: readonly RecordHeaderInput[];
  /** Milliseconds since the epoch. Default: the batch's `baseTimestamp`. */
  timestamp?: number;
  /** Offset relative to the batch's base offset. Default: the record's index. */
  offsetDelta?: number;
}

/** A RecordBatch v2 to encode. Only `records` is required. */
export interface RecordBatchInput {
  records: readonly RecordInput[];
  /** Default 0 (what producers send; the broker assigns the real one). */
  baseOffset?: number;
  /** Default -1 (unknown), what producers send. */
  partitionLeaderEpoch?: number;
  /** Compression id, see {@link CompressionType}. Default none. */
  compression?: number;
  /** Default `CreateTime`. */
  timestampType?: TimestampType;
  /** Default: the first record's timestamp, or now when no record has one. */
  baseTimestamp?: number;
  /** Default: the largest record timestamp (with LogAppendTime, set it to the append time). */
  maxTimestamp?: number;
  /** Default: the largest offset delta (records.length - 1 with default deltas); 0 for an empty batch. */
  lastOffsetDelta?: number;
  /** Default -1 (neither idempotent nor transactional). */
  producerId?: number;
  /** Default -1. */
  producerEpoch?: number;
  /** Default -1. */
  baseSequence?: number;
  isTransactional?: boolean;
  isControl?: boolean;
}

/** Options of the encoders. */
export interface EncodeOptions {
  /** Codecs by compression id. Default {@link defaultCodecs}. */
  codecs?: CodecRegistry;
}

const toBytes = (v: Buffer | string | null | undefined): Buffer | null =>
  v === null || v === undefined ? null : typeof v === 'string' ? Buffer.from(v, 'utf8') : v;

/** Varint-length-prefixed bytes, as a record's key, value and header fields are written; null is length -1. */
function writeVarBytes(w: Writer, data: Buffer | null): Writer {
  return data === null ? w.writeVarInt(-1) : w.writeVarInt(data.length).writeRaw(data);
}

function writeRecord(w: Writer, record: RecordInput, offsetDelta: number, timestampDelta: number): void {
  const body = new Writer(64).writeInt8(0).writeVarLong(timestampDelta).writeVarInt(offsetDelta);
  writeVarBytes(body, toBytes(record.key));
  writeVarBytes(body, toBytes(record.value));
  const headers = record.headers ?? [];
  body.writeVarInt(headers.length);
  for (const header of headers)
    writeVarBytes(writeVarBytes(body, Buffer.from(header.key, 'utf8')), toBytes(header.value));
  w.writeVarInt(body.size).writeRaw(body.toBuffer());
}

function compress(codecs: CodecRegistry, id: number, data: Buffer): Buffer {
  const codec = codecs.get(id);
  if (!codec) throw new KafkaProtocolError('ERR_UNKNOWN_CODEC', `unknown compression codec ${id}`);
  return codec.compress(data);
}

/**
 * Encodes a RecordBatch v2 (magic 2) with its CRC32C, compressing the records with `compression`.
 *
 * @example
 * const bytes = encodeRecordBatch({
 *   compression: CompressionType.LZ4,
 *   records: [{ key: 'k', value: 'v', headers: [{ key: 'trace', value: 'abc' }], timestamp: Date.now() }],
 * });
 */
export function encodeRecordBatch(batch: RecordBatchInput, options: EncodeOptions = {}): Buffer {
  const records = batch.records;
  const compression = batch.compression ?? CompressionType.NONE;
  if (!Number.isInteger(compression) || compression < 0 || compression > 7) {
    throw new KafkaProtocolError('ERR_INVALID_ARGUMENT', `compression id ${compression} is not in 0..7`);
  }
  const firstTimestamp = records.find((r) => r.timestamp !== undefined)?.timestamp;
  const baseTimestamp = batch.baseTimestamp ?? firstTimestamp ?? Date.now();
  let maxTimestamp = -Infinity;
  let maxOffsetDelta = 0;
  const body = new Writer(1024);
  records.forEach((record, i) => {
    const timestamp = record.timestamp ?? baseTimestamp;
    const offsetDelta = record.offsetDelta ?? i;
    maxTimestamp = Math.max(maxTimestamp, timestamp);
    maxOffsetDelta = Math.max(maxOffsetDelta, offsetDelta);
    writeRecord(body, record, offsetDelta, timestamp - baseTimestamp);
  });
  const recordBytes =
    compression === CompressionType.NONE
      ? body.toBuffer()
      : compress(options.codecs ?? defaultCodecs, compression, body.toBuffer());

  const attributes =
    compression |
    (batch.timestampType === 'LogAppendTime' ? 0x08 : 0) |
    (batch.isTransactional ? 0x10 : 0) |
    (batch.isControl ? 0x20 : 0);
  const out = new Writer(RECORD_BATCH_OVERHEAD + recordBytes.length)
    .writeInt64(batch.baseOffset ?? 0)
    .writeInt32(RECORD_BATCH_OVERHEAD - LOG_OVERHEAD + recordBytes.length)
    .writeInt32(batch.partitionLeaderEpoch ?? -1)
    .writeInt8(2)
    .writeUInt32(0) // CRC32C, filled in below
    .writeInt16(attributes)
    .writeInt32(batch.lastOffsetDelta ?? maxOffsetDelta)
    .writeInt64(baseTimestamp)
    .writeInt64(batch.maxTimestamp ?? (records.length > 0 ? maxTimestamp : baseTimestamp))
    .writeInt64(batch.producerId ?? -1)
    .writeInt16(batch.producerEpoch ?? -1)
    .writeInt32(batch.baseSequence ?? -1)
    .writeInt32(records.length)
    .writeRaw(recordBytes)
    .toBuffer();
  out.writeUInt32BE(crc32c(out.subarray(21)), 17);
  return out;
}

/**
 * The record of a control batch (KIP-98): key = version int16 (0) and type int16 (0 ABORT, 1 COMMIT); value =
 * version int16 (0) and coordinator epoch int32. Put it alone in a batch with `isControl` and `isTransactional`.
 */
export function controlRecord(marker: {
  type: Exclude<ControlType, 'UNKNOWN'>;
  coordinatorEpoch?: number;
  timestamp?: number;
}): RecordInput {
  const key = Buffer.alloc(4);
  key.writeInt16BE(marker.type === 'ABORT' ? 0 : 1, 2);
  const value = Buffer.alloc(6);
  value.writeInt32BE(marker.coordinatorEpoch ?? 0, 2);
  return { key, value, timestamp: marker.timestamp };
}

/** A legacy message to encode. */
export interface MessageInput {
  key?: Buffer | string | null;
  value: Buffer | string | null;
  /** Magic 1 only. Default now. */
  timestamp?: number;
  /**
   * The offset written in front of the message. Default: `baseOffset + index`, and for the inner messages of a
   * magic 1 wrapper the relative index.
   */
  offset?: number;
}

/** A legacy message set (magic 0 or 1) to encode. */
export interface MessageSetInput {
  magic: 0 | 1;
  messages: readonly MessageInput[];
  /** Compression id: the messages go, compressed, into the value of one wrapper message. Default none. */
  compression?: number;
  /** Default 0. */
  baseOffset?: number;
  /** Magic 1: `LogAppendTime` sets the timestamp-type attribute (of the wrapper, when compressed). */
  timestampType?: TimestampType;
  /** Timestamp of a magic 1 wrapper. Default: the largest inner timestamp. */
  wrapperTimestamp?: number;
}

function writeMessage(
  w: Writer,
  offset: number,
  magic: 0 | 1,
  attributes: number,
  timestamp: number,
  key: Buffer | null,
  value: Buffer | null,
): void {
  const m = new Writer(64).writeUInt32(0).writeInt8(magic).writeInt8(attributes);
  if (magic === 1) m.writeInt64(timestamp);
  const message = m.writeNullableBytes(key).writeNullableBytes(value).toBuffer();
  message.writeUInt32BE(crc32(message.subarray(4)), 0);
  w.writeInt64(offset).writeInt32(message.length).writeRaw(message);
}

/**
 * Encodes a legacy message set (magic 0 or 1), with CRC32. Compressed sets become one wrapper message whose value
 * is the compressed inner set; magic 1 inner offsets are relative, as KIP-31 defines them. Kafka 4 brokers no
 * longer write these formats: this is for fixtures and for reading old logs.
 */
export function encodeMessageSet(set: MessageSetInput, options: EncodeOptions = {}): Buffer {
  const { magic, messages } = set;
  const compression = set.compression ?? CompressionType.NONE;
  const baseOffset = set.baseOffset ?? 0;
  const now = Date.now();
  const timestampBit = magic === 1 && set.timestampType === 'LogAppendTime' ? 0x08 : 0;
  const w = new Writer(1024);
  if (compression === CompressionType.NONE) {
    messages.forEach((m, i) =>
      writeMessage(
        w,
        m.offset ?? baseOffset + i,
        magic,
        timestampBit,
        m.timestamp ?? now,
        toBytes(m.key),
        toBytes(m.value),
      ),
    );
    return w.toBuffer();
  }
  const inner = new Writer(1024);
  messages.forEach((m, i) =>
    writeMessage(
      inner,
      m.offset ?? (magic === 1 ? i : baseOffset + i),
      magic,
      0,
      m.timestamp ?? now,
      toBytes(m.key),
      toBytes(m.value),
    ),
  );
  const compressed = compress(options.codecs ?? defaultCodecs, compression, inner.toBuffer());
  const wrapperTimestamp = set.wrapperTimestamp ?? Math.max(-1, ...messages.map((m) => m.timestamp ?? now));
  writeMessage(
    w,
    baseOffset + messages.length - 1,
    magic,
    compression | timestampBit,
    wrapperTimestamp,
    null,
    compressed,
  );
  return w.toBuffer();
}
