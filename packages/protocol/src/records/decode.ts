/**
 * Decoding of a Fetch partition's records bytes: RecordBatch v2 and legacy message sets v0/v1, in any mix.
 *
 * The hot path reads the Buffer directly. Varints take a one-byte fast path inline and fall back to a function;
 * each record costs its own object plus the key and value views, nothing more.
 */
import { KafkaProtocolError } from '../errors';
import { crc32, crc32c } from './crc';
import { defaultCodecs, type CodecRegistry } from './codecs';
import type {
  ControlType,
  DecodeRecordsOptions,
  DecodeRecordsResult,
  KafkaRecord,
  RecordsScan,
  RecordBatch,
  RecordHeader,
  TimestampType,
} from './types';

/** Default of {@link DecodeRecordsOptions.maxDecompressedBytes}: 128 MiB. */
export const DEFAULT_MAX_DECOMPRESSED_BYTES = 128 * 1024 * 1024;

/** Bytes before a batch's or message's magic byte that both formats share: offset int64, length int32. */
export const LOG_OVERHEAD = 12;
/** Size of the RecordBatch v2 header, up to and including the record count. */
export const RECORD_BATCH_OVERHEAD = 61;

const EMPTY_HEADERS: readonly RecordHeader[] = Object.freeze([]);

/**
 * Key and value views. `buf.subarray()` constructs through the species lookup and the generic `Buffer()` entry,
 * several times slower than a direct construction, and it is paid twice per record. This class is what Node's
 * internal FastBuffer is: a Uint8Array whose prototype chain runs through Buffer.prototype (`constructor` is
 * Buffer too), so the views are Buffers in every observable way (`Buffer.isBuffer`, methods, `instanceof`).
 */
class BufferView extends Uint8Array {
  // Explicit parameters: the implicit `constructor(...args)` of a derived class is not inlined.
  constructor(arrayBuffer: ArrayBuffer, byteOffset: number, length: number) {
    super(arrayBuffer, byteOffset, length);
  }
}
Object.setPrototypeOf(BufferView.prototype, Buffer.prototype);
Object.defineProperty(BufferView.prototype, 'constructor', { value: Buffer, writable: true, configurable: true });

const ATTR_COMPRESSION = 0x07;
const ATTR_TIMESTAMP_TYPE = 0x08;
const ATTR_TRANSACTIONAL = 0x10;
const ATTR_CONTROL = 0x20;

const MAX_SAFE_HIGH = 0x1fffff; // high 32 bits of 2^53 - 1

interface Context {
  readonly verifyCrc: boolean;
  readonly readCommitted: boolean;
  readonly fromOffset: number;
  readonly codecs: CodecRegistry;
  readonly maxDecompressedBytes: number;
}

function fail(
  code:
    | 'ERR_BUFFER_UNDERFLOW'
    | 'ERR_INVALID_LENGTH'
    | 'ERR_INVALID_VARINT'
    | 'ERR_INVALID_COUNT'
    | 'ERR_MALFORMED'
    | 'ERR_OUT_OF_RANGE',
  message: string,
  offset: number,
): never {
  throw new KafkaProtocolError(code, message, { offset });
}

/** A signed int64 as a number; ERR_OUT_OF_RANGE beyond ±(2^53 - 1). */
function int64(buf: Buffer, pos: number, what: string): number {
  const high = buf.readInt32BE(pos);
  if (high > MAX_SAFE_HIGH || high < -MAX_SAFE_HIGH - 1) {
    fail('ERR_OUT_OF_RANGE', `${what} ${buf.readBigInt64BE(pos)} is beyond Number.MAX_SAFE_INTEGER`, pos);
  }
  return high * 4294967296 + buf.readUInt32BE(pos + 4);
}

/** End position of the last varint read by {@link varintSlow}. */
let varintEnd = 0;

/** A zigzag varint (up to `maxBytes` bytes) starting at `pos`, not past `limit`. Sets {@link varintEnd}. */
function varintSlow(buf: Buffer, pos: number, limit: number, maxBytes: number): number {
  let raw = 0;
  let scale = 1;
  const start = pos;
  for (let i = 0; ; i++) {
    if (pos >= limit) fail('ERR_BUFFER_UNDERFLOW', 'varint runs past the end of its record', start);
    if (i === maxBytes) fail('ERR_INVALID_VARINT', `varint longer than ${maxBytes} bytes`, start);
    const b = buf[pos++];
    raw += (b & 0x7f) * scale;
    scale *= 128;
    if (b < 0x80) break;
  }
  varintEnd = pos;
  // Zigzag without 32-bit operators, which would truncate varlongs.
  return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
}

/** Short header keys: an ASCII fast path, UTF-8 otherwise. */
function headerKey(buf: Buffer, start: number, end: number): string {
  if (end - start <= 24) {
    let s = '';
    for (let i = start; i < end; i++) {
      const c = buf[i];
      if (c >= 0x80) return buf.toString('utf8', start, end);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return buf.toString('utf8', start, end);
}

/**
 * Decodes `count` records of a RecordBatch v2 from `buf[pos, end)` into `out`, keeping those at or after
 * `fromOffset`. Throws unless the records fill the range exactly.
 */
function decodeRecordsV2(
  buf: Buffer,
  pos: number,
  end: number,
  count: number,
  baseOffset: number,
  baseTimestamp: number,
  logAppendTime: number,
  fromOffset: number,
  out: KafkaRecord[],
): void {
  const arrayBuffer = buf.buffer as ArrayBuffer; // a SharedArrayBuffer works the same
  let n = 0; // `out` arrives empty or pre-sized to `count`
  const base = buf.byteOffset;
  let p = pos;
  for (let i = 0; i < count; i++) {
    const recordStart = p;
    let b = buf[p];
    let length: number;
    let b2: number;
    if (b < 0x80) {
      length = (b >>> 1) ^ -(b & 1);
      p++;
    } else if (p + 1 < end && (b2 = buf[p + 1]) < 0x80) {
      // Two bytes: records of 64 B to 8 KiB, the common case.
      const raw = (b & 0x7f) | (b2 << 7);
      length = (raw >>> 1) ^ -(raw & 1);
      p += 2;
    } else {
      length = varintSlow(buf, p, end, 5);
      p = varintEnd;
    }
    const recordEnd = p + length;
    if (length < 6 || recordEnd > end) {
      fail(
        length < 0 ? 'ERR_INVALID_LENGTH' : 'ERR_BUFFER_UNDERFLOW',
        `record length ${length} is invalid`,
        recordStart,
      );
    }
    p++; // attributes: unused

    b = buf[p];
    let timestampDelta: number;
    if (b < 0x80) {
      timestampDelta = (b >>> 1) ^ -(b & 1);
      p++;
    } else {
      timestampDelta = varintSlow(buf, p, recordEnd, 10);
      p = varintEnd;
    }
    b = buf[p];
    let offsetDelta: number;
    if (b < 0x80) {
      offsetDelta = (b >>> 1) ^ -(b & 1);
      p++;
    } else {
      offsetDelta = varintSlow(buf, p, recordEnd, 5);
      p = varintEnd;
    }

    b = buf[p];
    let keyLength: number;
    if (b < 0x80) {
      keyLength = (b >>> 1) ^ -(b & 1);
      p++;
    } else {
      keyLength = varintSlow(buf, p, recordEnd, 5);
      p = varintEnd;
    }
    let key: Buffer | null = null;
    if (keyLength >= 0) {
      if (p + keyLength > recordEnd)
        fail('ERR_BUFFER_UNDERFLOW', `record key length ${keyLength} is past the record end`, p);
      key = new BufferView(arrayBuffer, base + p, keyLength) as Buffer;
      p += keyLength;
    } else if (keyLength !== -1) {
      fail('ERR_INVALID_LENGTH', `record key length ${keyLength} is invalid`, p);
    }

    b = buf[p];
    let valueLength: number;
    if (b < 0x80) {
      valueLength = (b >>> 1) ^ -(b & 1);
      p++;
    } else if (p + 1 < recordEnd && (b2 = buf[p + 1]) < 0x80) {
      const raw = (b & 0x7f) | (b2 << 7);
      valueLength = (raw >>> 1) ^ -(raw & 1);
      p += 2;
    } else {
      valueLength = varintSlow(buf, p, recordEnd, 5);
      p = varintEnd;
    }
    let value: Buffer | null = null;
    if (valueLength >= 0) {
      if (p + valueLength > recordEnd) {
        fail('ERR_BUFFER_UNDERFLOW', `record value length ${valueLength} is past the record end`, p);
      }
      value = new BufferView(arrayBuffer, base + p, valueLength) as Buffer;
      p += valueLength;
    } else if (valueLength !== -1) {
      fail('ERR_INVALID_LENGTH', `record value length ${valueLength} is invalid`, p);
    }

    b = buf[p];
    let headerCount: number;
    if (b < 0x80) {
      headerCount = (b >>> 1) ^ -(b & 1);
      p++;
    } else {
      headerCount = varintSlow(buf, p, recordEnd, 5);
      p = varintEnd;
    }
    let headers = EMPTY_HEADERS;
    if (headerCount !== 0) {
      if (headerCount < 0 || headerCount * 2 > recordEnd - p) {
        fail('ERR_INVALID_COUNT', `record header count ${headerCount} is invalid`, p);
      }
      const list: RecordHeader[] = [];
      for (let h = 0; h < headerCount; h++) {
        const keyLen = varintSlow(buf, p, recordEnd, 5);
        p = varintEnd;
        if (keyLen < 0 || p + keyLen > recordEnd)
          fail('ERR_INVALID_LENGTH', `header key length ${keyLen} is invalid`, p);
        const hKey = headerKey(buf, p, p + keyLen);
        p += keyLen;
        const valueLen = varintSlow(buf, p, recordEnd, 5);
        p = varintEnd;
        let hValue: Buffer | null = null;
        if (valueLen >= 0) {
          if (p + valueLen > recordEnd)
            fail('ERR_BUFFER_UNDERFLOW', `header value length ${valueLen} is past the record end`, p);
          hValue = buf.subarray(p, p + valueLen);
          p += valueLen;
        } else if (valueLen !== -1) {
          fail('ERR_INVALID_LENGTH', `header value length ${valueLen} is invalid`, p);
        }
        list.push({ key: hKey, value: hValue });
      }
      headers = list;
    }
    if (p !== recordEnd) fail('ERR_MALFORMED', `record fields do not fill its declared length ${length}`, recordStart);

    const offset = baseOffset + offsetDelta;
    if (offset >= fromOffset) {
      out[n++] = {
        offset,
        timestamp: logAppendTime >= 0 ? logAppendTime : baseTimestamp + timestampDelta,
        key,
        value,
        headers,
      };
    }
  }
  out.length = n;
  if (p !== end) fail('ERR_MALFORMED', `${end - p} bytes left after the batch's ${count} records`, p);
}

function decompress(ctx: Context, compression: number, data: Buffer, at: number): Buffer {
  const codec = ctx.codecs.get(compression);
  if (!codec)
    throw new KafkaProtocolError('ERR_UNKNOWN_CODEC', `unknown compression codec ${compression}`, { offset: at });
  try {
    return codec.decompress(data, { maxOutputBytes: ctx.maxDecompressedBytes });
  } catch (err) {
    if (err instanceof KafkaProtocolError && err.code === 'ERR_UNKNOWN_CODEC') {
      throw new KafkaProtocolError('ERR_UNKNOWN_CODEC', err.message, { offset: at, cause: err });
    }
    const reason = err instanceof Error ? err.message : String(err);
    throw new KafkaProtocolError('ERR_DECOMPRESSION', `${codec.name} decompression failed: ${reason}`, {
      offset: at,
      cause: err,
    });
  }
}

/** Tracks aborted transactions under read_committed, as the Java consumer does. */
class AbortedTransactions {
  private readonly pending: Array<{ producerId: number; firstOffset: number }>;
  private next = 0;
  private readonly active = new Set<number>();

  constructor(list: DecodeRecordsOptions['abortedTransactions']) {
    this.pending = (list ?? [])
      .map((t) => ({ producerId: Number(t.producerId), firstOffset: Number(t.firstOffset) }))
      .sort((a, b) => a.firstOffset - b.firstOffset);
  }

  /** Whether a transactional data batch from `producerId` ending at `lastOffset` belongs to an aborted transaction. */
  isAborted(producerId: number, lastOffset: number): boolean {
    this.advance(lastOffset);
    return this.active.has(producerId);
  }

  /** An ABORT marker ends the producer's aborted transaction. */
  onAbortMarker(producerId: number, lastOffset: number): void {
    this.advance(lastOffset);
    this.active.delete(producerId);
  }

  private advance(lastOffset: number): void {
    while (this.next < this.pending.length && this.pending[this.next].firstOffset <= lastOffset) {
      this.active.add(this.pending[this.next++].producerId);
    }
  }
}

function controlType(key: Buffer | null, at: number): ControlType {
  if (!key || key.length < 4) fail('ERR_MALFORMED', 'control record key is shorter than 4 bytes', at);
  const type = key.readInt16BE(2);
  return type === 0 ? 'ABORT' : type === 1 ? 'COMMIT' : 'UNKNOWN';
}

/**
 * Decodes one RecordBatch v2 of `size` bytes after the log overhead at `pos`. Returns the batch to deliver, or
 * undefined when it is skipped (before `fromOffset`, aborted, or left without records).
 */
function decodeBatchV2(
  buf: Buffer,
  pos: number,
  batchEnd: number,
  ctx: Context,
  aborted: AbortedTransactions | undefined,
): RecordBatch | undefined {
  if (batchEnd - pos < RECORD_BATCH_OVERHEAD) {
    fail(
      'ERR_INVALID_LENGTH',
      `record batch length ${batchEnd - pos - LOG_OVERHEAD} is below the header size`,
      pos + 8,
    );
  }
  if (ctx.verifyCrc) {
    const expected = buf.readUInt32BE(pos + 17);
    const actual = crc32c(buf.subarray(pos + 21, batchEnd));
    if (actual !== expected) {
      throw new KafkaProtocolError(
        'ERR_CRC_MISMATCH',
        `record batch CRC32C is ${actual.toString(16)}, expected ${expected.toString(16)}`,
        { offset: pos + 17 },
      );
    }
  }
  const baseOffset = int64(buf, pos, 'base offset');
  if (baseOffset < 0) fail('ERR_OUT_OF_RANGE', `base offset ${baseOffset} is negative`, pos);
  const attributes = buf.readInt16BE(pos + 21);
  const lastOffsetDelta = buf.readInt32BE(pos + 23);
  const lastOffset = baseOffset + lastOffsetDelta;
  const producerId = int64(buf, pos + 43, 'producer id');
  const isTransactional = (attributes & ATTR_TRANSACTIONAL) !== 0;
  const isControl = (attributes & ATTR_CONTROL) !== 0;
  if (!isControl) {
    if (lastOffset < ctx.fromOffset) return undefined;
    if (aborted && isTransactional && aborted.isAborted(producerId, lastOffset)) return undefined;
  }

  const count = buf.readInt32BE(pos + 57);
  const compression = attributes & ATTR_COMPRESSION;
  let recordsBuf = buf;
  let recordsStart = pos + RECORD_BATCH_OVERHEAD;
  let recordsEnd = batchEnd;
  if (compression !== 0) {
    recordsBuf = decompress(ctx, compression, buf.subarray(recordsStart, batchEnd), recordsStart);
    recordsStart = 0;
    recordsEnd = recordsBuf.length;
  }
  // The smallest record takes 7 bytes: this bounds the count before anything is allocated for it.
  if (count < 0 || count * 7 > recordsEnd - recordsStart) {
    fail('ERR_INVALID_COUNT', `record count ${count} does not fit the batch`, pos + 57);
  }

  const timestampType: TimestampType = attributes & ATTR_TIMESTAMP_TYPE ? 'LogAppendTime' : 'CreateTime';
  const baseTimestamp = int64(buf, pos + 27, 'base timestamp');
  const maxTimestamp = int64(buf, pos + 35, 'max timestamp');
  const records: KafkaRecord[] = new Array(count);
  try {
    decodeRecordsV2(
      recordsBuf,
      recordsStart,
      recordsEnd,
      count,
      baseOffset,
      baseTimestamp,
      timestampType === 'LogAppendTime' ? maxTimestamp : -1,
      isControl ? 0 : ctx.fromOffset,
      records,
    );
  } catch (err) {
    // Offsets inside decompressed bytes mean nothing to the caller: report the batch's records position.
    if (compression !== 0 && err instanceof KafkaProtocolError) {
      throw new KafkaProtocolError(err.code, `in the decompressed records of the batch: ${err.message}`, {
        offset: pos + RECORD_BATCH_OVERHEAD,
        cause: err,
      });
    }
    throw err;
  }

  let control: ControlType | undefined;
  if (isControl) {
    control = records.length > 0 ? controlType(records[0].key, pos + RECORD_BATCH_OVERHEAD) : 'UNKNOWN';
    if (aborted && control === 'ABORT') aborted.onAbortMarker(producerId, lastOffset);
  } else if (records.length === 0) {
    return undefined;
  }

  return {
    magic: 2,
    baseOffset,
    lastOffsetDelta,
    partitionLeaderEpoch: buf.readInt32BE(pos + 12),
    compression,
    timestampType,
    baseTimestamp,
    maxTimestamp,
    producerId,
    producerEpoch: buf.readInt16BE(pos + 51),
    baseSequence: buf.readInt32BE(pos + 53),
    isTransactional,
    isControl,
    controlType: control,
    records: isControl ? [] : records,
  };
}

/** A legacy message, parsed. `end` is where the next message starts. */
interface LegacyMessage {
  offset: number;
  magic: number;
  attributes: number;
  timestamp: number;
  key: Buffer | null;
  value: Buffer | null;
  end: number;
}

/** Parses the legacy message (magic 0 or 1) at `pos`, whose whole bytes are known to be in `buf[pos, end)`. */
function parseLegacyMessage(buf: Buffer, pos: number, messageEnd: number, verifyCrc: boolean): LegacyMessage {
  const magic = buf[pos + 16];
  const fixed = magic === 0 ? 14 : 22; // crc, magic, attributes, [timestamp], key length, value length
  if (messageEnd - pos - LOG_OVERHEAD < fixed) {
    fail(
      'ERR_INVALID_LENGTH',
      `message size ${messageEnd - pos - LOG_OVERHEAD} is below the minimum of ${fixed}`,
      pos + 8,
    );
  }
  if (verifyCrc) {
    const expected = buf.readUInt32BE(pos + 12);
    const actual = crc32(buf.subarray(pos + 16, messageEnd));
    if (actual !== expected) {
      throw new KafkaProtocolError(
        'ERR_CRC_MISMATCH',
        `message CRC32 is ${actual.toString(16)}, expected ${expected.toString(16)}`,
        {
          offset: pos + 12,
        },
      );
    }
  }
  const offset = int64(buf, pos, 'offset');
  const attributes = buf[pos + 17];
  let p = pos + 18;
  let timestamp = -1;
  if (magic === 1) {
    timestamp = int64(buf, p, 'timestamp');
    p += 8;
  }
  const keyLength = buf.readInt32BE(p);
  p += 4;
  let key: Buffer | null = null;
  if (keyLength >= 0) {
    if (keyLength > messageEnd - p - 4)
      fail('ERR_BUFFER_UNDERFLOW', `message key length ${keyLength} is past the message end`, p - 4);
    key = buf.subarray(p, p + keyLength);
    p += keyLength;
  } else if (keyLength !== -1) {
    fail('ERR_INVALID_LENGTH', `message key length ${keyLength} is invalid`, p - 4);
  }
  const valueLength = buf.readInt32BE(p);
  p += 4;
  let value: Buffer | null = null;
  if (valueLength >= 0) {
    if (valueLength > messageEnd - p)
      fail('ERR_BUFFER_UNDERFLOW', `message value length ${valueLength} is past the message end`, p - 4);
    value = buf.subarray(p, p + valueLength);
    p += valueLength;
  } else if (valueLength !== -1) {
    fail('ERR_INVALID_LENGTH', `message value length ${valueLength} is invalid`, p - 4);
  }
  if (p !== messageEnd) fail('ERR_MALFORMED', `${messageEnd - p} bytes left after the message's value`, p);
  return { offset, magic, attributes, timestamp, key, value, end: messageEnd };
}

/** Decodes one top-level legacy message (magic 0/1), unwrapping a compressed wrapper. */
function decodeLegacy(buf: Buffer, pos: number, messageEnd: number, ctx: Context): RecordBatch | undefined {
  const wrapper = parseLegacyMessage(buf, pos, messageEnd, ctx.verifyCrc);
  const compression = wrapper.attributes & ATTR_COMPRESSION;
  const logAppendTime = wrapper.magic === 1 && (wrapper.attributes & ATTR_TIMESTAMP_TYPE) !== 0;
  const records: KafkaRecord[] = [];
  let baseOffset = wrapper.offset;
  let lastOffset = wrapper.offset;
  if (compression === 0) {
    if (wrapper.offset >= ctx.fromOffset) {
      records.push({
        offset: wrapper.offset,
        timestamp: wrapper.timestamp,
        key: wrapper.key,
        value: wrapper.value,
        headers: EMPTY_HEADERS,
      });
    }
  } else {
    if (wrapper.value === null) fail('ERR_MALFORMED', 'compressed wrapper message has a null value', pos);
    const valueAt = messageEnd - wrapper.value.length;
    const inner = decompress(ctx, compression, wrapper.value, valueAt);
    const messages: LegacyMessage[] = [];
    try {
      for (let p = 0; p < inner.length;) {
        if (inner.length - p < LOG_OVERHEAD + 5) fail('ERR_BUFFER_UNDERFLOW', 'inner message set is truncated', p);
        const size = inner.readInt32BE(p + 8);
        if (size < 0 || size > inner.length - p - LOG_OVERHEAD) {
          fail('ERR_INVALID_LENGTH', `inner message size ${size} is invalid`, p + 8);
        }
        const innerMagic = inner[p + 16];
        if (innerMagic !== wrapper.magic) {
          throw new KafkaProtocolError(
            'ERR_UNKNOWN_MAGIC',
            `inner message magic ${innerMagic} differs from its wrapper's ${wrapper.magic}`,
            { offset: p + 16 },
          );
        }
        const message = parseLegacyMessage(inner, p, p + LOG_OVERHEAD + size, ctx.verifyCrc);
        if ((message.attributes & ATTR_COMPRESSION) !== 0)
          fail('ERR_MALFORMED', 'compressed message inside a compressed message', p);
        messages.push(message);
        p = message.end;
      }
    } catch (err) {
      if (err instanceof KafkaProtocolError) {
        throw new KafkaProtocolError(err.code, `in the decompressed message set of a wrapper: ${err.message}`, {
          offset: valueAt,
          cause: err,
        });
      }
      throw err;
    }
    if (messages.length === 0) return undefined;
    // Magic 1 wrappers carry relative inner offsets (KIP-31): the wrapper's offset is the last inner one.
    const shift = wrapper.magic === 1 ? wrapper.offset - messages[messages.length - 1].offset : 0;
    baseOffset = messages[0].offset + shift;
    lastOffset = messages[messages.length - 1].offset + shift;
    for (const message of messages) {
      const offset = message.offset + shift;
      if (offset < ctx.fromOffset) continue;
      records.push({
        offset,
        timestamp: logAppendTime ? wrapper.timestamp : message.timestamp,
        key: message.key,
        value: message.value,
        headers: EMPTY_HEADERS,
      });
    }
  }
  if (records.length === 0) return undefined;
  return {
    magic: wrapper.magic,
    baseOffset,
    lastOffsetDelta: lastOffset - baseOffset,
    partitionLeaderEpoch: -1,
    compression,
    timestampType: logAppendTime ? 'LogAppendTime' : 'CreateTime',
    baseTimestamp: wrapper.timestamp,
    maxTimestamp: wrapper.timestamp,
    producerId: -1,
    producerEpoch: -1,
    baseSequence: -1,
    isTransactional: false,
    isControl: false,
    controlType: undefined,
    records,
  };
}

/** The offset one past a whole batch or message at `pos` (for legacy compressed wrappers, the wrapper offset). */
function batchNextOffset(buf: Buffer, pos: number, magic: number): number {
  const offset = int64(buf, pos, 'offset');
  return magic === 2 ? offset + buf.readInt32BE(pos + 23) + 1 : offset + 1;
}

function context(options: DecodeRecordsOptions): Context {
  const ctx: Context = {
    verifyCrc: options.verifyCrc ?? true,
    readCommitted: options.isolationLevel === 'read_committed',
    fromOffset: options.fromOffset ?? 0,
    codecs: options.codecs ?? defaultCodecs,
    maxDecompressedBytes: options.maxDecompressedBytes ?? DEFAULT_MAX_DECOMPRESSED_BYTES,
  };
  if (!(ctx.maxDecompressedBytes > 0)) {
    throw new KafkaProtocolError(
      'ERR_INVALID_ARGUMENT',
      `maxDecompressedBytes must be positive, got ${ctx.maxDecompressedBytes}`,
    );
  }
  if (!Number.isSafeInteger(ctx.fromOffset)) {
    throw new KafkaProtocolError('ERR_INVALID_ARGUMENT', `fromOffset must be a safe integer, got ${ctx.fromOffset}`);
  }
  return ctx;
}

/**
 * Decodes the records bytes of one Fetch response partition: RecordBatch v2 and legacy message sets (magic 0 and
 * 1) in any mix; null (a partition without records) decodes to nothing. A batch cut short at the end is normal
 * (the broker stops at the fetch size): decoding stops before it and reports `truncated`. Malformed bytes raise a
 * {@link KafkaProtocolError} whose `offset` is the byte position in `buffer`.
 *
 * Offsets, timestamps and producer ids are numbers; a value beyond 2^53 - 1 raises `ERR_OUT_OF_RANGE`.
 * Decoding is synchronous, decompression included: codecs are synchronous (see `CompressionCodec`).
 *
 * @example
 * const { batches, nextOffset, truncated } = decodeRecords(partition.records, {
 *   isolationLevel: 'read_committed',
 *   abortedTransactions: partition.abortedTransactions,
 *   fromOffset: fetchOffset,
 * });
 * for (const batch of batches) {
 *   if (batch.isControl) continue;
 *   for (const record of batch.records) console.log(record.offset, record.value?.toString());
 * }
 */
export function decodeRecords(buffer: Buffer | null, options: DecodeRecordsOptions = {}): DecodeRecordsResult {
  if (buffer === null) {
    return {
      batches: [],
      bytesConsumed: 0,
      truncated: false,
      nextOffset: undefined,
      sizeNeeded: undefined,
      lastEpoch: -1,
    };
  }
  const ctx = context(options);
  const aborted = ctx.readCommitted ? new AbortedTransactions(options.abortedTransactions) : undefined;
  const batches: RecordBatch[] = [];
  const length = buffer.length;
  let pos = 0;
  let nextOffset: number | undefined;
  let sizeNeeded: number | undefined;
  let lastEpoch = -1;
  while (pos < length) {
    if (length - pos < LOG_OVERHEAD) break; // not even the length field: truncated
    const size = buffer.readInt32BE(pos + 8);
    if (size < 0) fail('ERR_INVALID_LENGTH', `batch length ${size} is negative`, pos + 8);
    const end = pos + LOG_OVERHEAD + size;
    if (end > length) {
      if (nextOffset === undefined) sizeNeeded = LOG_OVERHEAD + size;
      break;
    }
    if (size < 5) fail('ERR_INVALID_LENGTH', `batch length ${size} is too short to hold a magic byte`, pos + 8);
    const magic = buffer[pos + 16];
    let batch: RecordBatch | undefined;
    if (magic === 2) batch = decodeBatchV2(buffer, pos, end, ctx, aborted);
    else if (magic === 0 || magic === 1) batch = decodeLegacy(buffer, pos, end, ctx);
    else throw new KafkaProtocolError('ERR_UNKNOWN_MAGIC', `unknown magic byte ${magic}`, { offset: pos + 16 });
    if (batch) batches.push(batch);
    nextOffset = batchNextOffset(buffer, pos, magic);
    lastEpoch = magic === 2 ? buffer.readInt32BE(pos + 12) : -1;
    pos = end;
  }
  return { batches, bytesConsumed: pos, truncated: pos < length, nextOffset, sizeNeeded, lastEpoch };
}

/**
 * Reads only the framing and headers of a Fetch partition's records bytes: what {@link decodeRecords} would report
 * about positions (`nextOffset`, `lastEpoch`, `bytesConsumed`, `truncated`, `sizeNeeded`) and how many records it
 * would deliver, without checking CRCs, decompressing or decoding a single data record. A fetch engine uses it to
 * move its fetch position on and queue the raw bytes, and calls {@link decodeRecords} on `buffer.subarray(0,
 * bytesConsumed)` with the same options when the application takes them, so records are made just before they are
 * handled and die young.
 *
 * `records` is 0 exactly when `decodeRecords` would deliver nothing: no data batch ends at or after `fromOffset`
 * and outside an aborted transaction (under read_committed, the control batches are decoded to follow the ABORT
 * markers; they are tiny). Otherwise it counts the records the batch headers announce at or after `fromOffset`,
 * each batch counting at least one; compaction can leave fewer. Framing errors (a negative length, an unknown magic
 * byte, a batch shorter than its header, offsets beyond 2^53) throw the same {@link KafkaProtocolError}s as
 * `decodeRecords`; a bad CRC or a malformed record is found only by `decodeRecords`.
 *
 * @example
 * const scan = scanRecords(partition.records, { fromOffset: position });
 * if (scan.nextOffset !== undefined) position = scan.nextOffset;
 * const raw = partition.records!.subarray(0, scan.bytesConsumed); // queue it; later:
 * const { batches } = decodeRecords(raw, { fromOffset: oldPosition });
 */
export function scanRecords(buffer: Buffer | null, options: DecodeRecordsOptions = {}): RecordsScan {
  const length = buffer === null ? 0 : buffer.length;
  const ctx = context(options);
  const aborted = ctx.readCommitted ? new AbortedTransactions(options.abortedTransactions) : undefined;
  const from = ctx.fromOffset;
  let pos = 0;
  let nextOffset: number | undefined;
  let sizeNeeded: number | undefined;
  let lastEpoch = -1;
  let records = 0;
  while (pos < length) {
    const buf = buffer!;
    if (length - pos < LOG_OVERHEAD) break;
    const size = buf.readInt32BE(pos + 8);
    if (size < 0) fail('ERR_INVALID_LENGTH', `batch length ${size} is negative`, pos + 8);
    const end = pos + LOG_OVERHEAD + size;
    if (end > length) {
      if (nextOffset === undefined) sizeNeeded = LOG_OVERHEAD + size;
      break;
    }
    if (size < 5) fail('ERR_INVALID_LENGTH', `batch length ${size} is too short to hold a magic byte`, pos + 8);
    const magic = buf[pos + 16];
    if (magic === 2) {
      if (end - pos < RECORD_BATCH_OVERHEAD) {
        fail('ERR_INVALID_LENGTH', `record batch length ${size} is below the header size`, pos + 8);
      }
      const baseOffset = int64(buf, pos, 'base offset');
      if (baseOffset < 0) fail('ERR_OUT_OF_RANGE', `base offset ${baseOffset} is negative`, pos);
      const attributes = buf.readInt16BE(pos + 21);
      const lastOffset = baseOffset + buf.readInt32BE(pos + 23);
      if ((attributes & ATTR_CONTROL) !== 0) {
        // Only an ABORT marker changes what follows, and only under read_committed.
        if (aborted) decodeBatchV2(buf, pos, end, ctx, aborted);
      } else if (lastOffset >= from) {
        const transactional = (attributes & ATTR_TRANSACTIONAL) !== 0;
        if (!(aborted && transactional && aborted.isAborted(int64(buf, pos + 43, 'producer id'), lastOffset))) {
          const count = buf.readInt32BE(pos + 57);
          records += Math.max(1, count - Math.max(0, from - baseOffset));
        }
      }
      nextOffset = lastOffset + 1;
      lastEpoch = buf.readInt32BE(pos + 12);
    } else if (magic === 0 || magic === 1) {
      // A compressed wrapper's offset is that of its last inner message: it holds one at or after `from` iff this.
      const offset = int64(buf, pos, 'offset');
      if (offset >= from) records++;
      nextOffset = offset + 1;
      lastEpoch = -1;
    } else {
      throw new KafkaProtocolError('ERR_UNKNOWN_MAGIC', `unknown magic byte ${magic}`, { offset: pos + 16 });
    }
    pos = end;
  }
  return { bytesConsumed: pos, truncated: pos < length, nextOffset, sizeNeeded, lastEpoch, records };
}
